{{/*
Rule groups of the chart's PrometheusRule (templates/prometheusrule.yaml includes
"task-manager.prometheusRule.groups"). Owned by the observability work (issue 4); every alert links a
section of docs/runbook.md, and tests/chart/rules/ proves with promtool that each fires and stays
silent when it should. Objectives: availability 99.9% of requests without a 5xx, latency 99% of
requests within 500 ms (the service's histogram has a 0.5 s bucket), both over 30 days. Burn-rate
windows follow the multi-window multi-burn-rate pattern of the Google SRE workbook (ch. 5).
*/}}

{{/* Label matchers selecting the app's own series: the ServiceMonitor's job is the Service name. */}}
{{- define "task-manager.prometheusRule.appSelector" -}}
job="{{ include "task-manager.fullname" . }}",namespace="{{ .Release.Namespace }}"
{{- end }}

{{/* Label matchers selecting the collector subchart's own metrics: its ServiceMonitor's job is its Service name. */}}
{{- define "task-manager.prometheusRule.collectorSelector" -}}
job="{{ include "task-manager.subchartFullname" (dict "root" . "chart" "otel-collector") }}",namespace="{{ .Release.Namespace }}"
{{- end }}

{{/* Ratio of 5xx responses over a window: (list $ "1h"). Zero, not absent, when there are none. */}}
{{- define "task-manager.prometheusRule.errorRatio" -}}
{{- $sel := include "task-manager.prometheusRule.appSelector" (index . 0) -}}
{{- $w := index . 1 -}}
(sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $sel -}} ,status=~"5.."}[{{ $w }}])) or sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $sel -}} }[{{ $w }}])) * 0)
/ sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $sel -}} }[{{ $w }}]))
{{- end }}

{{/* Ratio of requests slower than the latency objective over a window: (list $ "1h"). */}}
{{- define "task-manager.prometheusRule.slowRatio" -}}
{{- $sel := include "task-manager.prometheusRule.appSelector" (index . 0) -}}
{{- $w := index . 1 -}}
1 - (sum by (namespace, job) (rate(http_server_request_duration_seconds_bucket{ {{- $sel -}} ,le="0.5"}[{{ $w }}]))
/ sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $sel -}} }[{{ $w }}])))
{{- end }}

{{- define "task-manager.prometheusRule.groups" -}}
{{- $app := include "task-manager.prometheusRule.appSelector" . -}}
{{- $col := include "task-manager.prometheusRule.collectorSelector" . -}}
{{- $runbook := "https://github.com/task-manager/task-manager/blob/main/docs/runbook.md" -}}
{{- /* Error budgets: 1 - objective. */ -}}
{{- $availBudget := "0.001" -}}
{{- $latencyBudget := "0.01" -}}
- name: task-manager.slo
  rules:
    - alert: TaskManagerAvailabilityBudgetBurnFast
      # Pages: at 14.4x the budget is gone in ~2 days (2% of 30d in 1h), at 6x in 5 days (5% in 6h).
      expr: |
        (
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "1h") | nindent 10 | trim }}) > (14.4 * {{ $availBudget }})
        and
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "5m") | nindent 10 | trim }}) > (14.4 * {{ $availBudget }})
        )
        or
        (
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "6h") | nindent 10 | trim }}) > (6 * {{ $availBudget }})
        and
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "30m") | nindent 10 | trim }}) > (6 * {{ $availBudget }})
        )
      for: 2m
      labels:
        severity: critical
        slo: availability
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: Task Manager is burning its availability error budget fast
        description: >-
          {{ "{{" }} $labels.job {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} returns 5xx on
          {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests; at this rate the 30-day budget of the
          99.9% availability objective is exhausted within days.
        runbook_url: {{ $runbook }}#taskmanageravailabilitybudgetburn
    - alert: TaskManagerAvailabilityBudgetBurnSlow
      # Tickets: 3x over 1d (10% of the budget) or 1x over 3d (10%).
      expr: |
        (
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "1d") | nindent 10 | trim }}) > (3 * {{ $availBudget }})
        and
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "2h") | nindent 10 | trim }}) > (3 * {{ $availBudget }})
        )
        or
        (
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "3d") | nindent 10 | trim }}) > (1 * {{ $availBudget }})
        and
          ({{ include "task-manager.prometheusRule.errorRatio" (list . "6h") | nindent 10 | trim }}) > (1 * {{ $availBudget }})
        )
      for: 15m
      labels:
        severity: warning
        slo: availability
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: Task Manager is slowly burning its availability error budget
        description: >-
          {{ "{{" }} $labels.job {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} returns 5xx on
          {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests, above what the 99.9% availability
          objective allows over 30 days.
        runbook_url: {{ $runbook }}#taskmanageravailabilitybudgetburn
    - alert: TaskManagerLatencyBudgetBurnFast
      expr: |
        (
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "1h") | nindent 10 | trim }}) > (14.4 * {{ $latencyBudget }})
        and
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "5m") | nindent 10 | trim }}) > (14.4 * {{ $latencyBudget }})
        )
        or
        (
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "6h") | nindent 10 | trim }}) > (6 * {{ $latencyBudget }})
        and
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "30m") | nindent 10 | trim }}) > (6 * {{ $latencyBudget }})
        )
      for: 2m
      labels:
        severity: critical
        slo: latency
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: Task Manager is burning its latency error budget fast
        description: >-
          {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests to {{ "{{" }} $labels.job {{ "}}" }} in
          {{ "{{" }} $labels.namespace {{ "}}" }} take longer than 500 ms; the objective allows 1% over 30 days.
        runbook_url: {{ $runbook }}#taskmanagerlatencybudgetburn
    - alert: TaskManagerLatencyBudgetBurnSlow
      expr: |
        (
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "1d") | nindent 10 | trim }}) > (3 * {{ $latencyBudget }})
        and
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "2h") | nindent 10 | trim }}) > (3 * {{ $latencyBudget }})
        )
        or
        (
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "3d") | nindent 10 | trim }}) > (1 * {{ $latencyBudget }})
        and
          ({{ include "task-manager.prometheusRule.slowRatio" (list . "6h") | nindent 10 | trim }}) > (1 * {{ $latencyBudget }})
        )
      for: 15m
      labels:
        severity: warning
        slo: latency
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: Task Manager is slowly burning its latency error budget
        description: >-
          {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests to {{ "{{" }} $labels.job {{ "}}" }} in
          {{ "{{" }} $labels.namespace {{ "}}" }} take longer than 500 ms, above the 1% the objective allows.
        runbook_url: {{ $runbook }}#taskmanagerlatencybudgetburn
- name: task-manager.health
  rules:
    - alert: TaskManagerHighErrorRatio
      # A symptom alert independent of the SLO maths: more than 5% of requests fail right now.
      expr: |
        ({{ include "task-manager.prometheusRule.errorRatio" (list . "5m") | nindent 8 | trim }}) > 0.05
        and
        sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $app -}} }[5m])) > 0.1
      for: 10m
      labels:
        severity: warning
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: More than 5% of Task Manager requests fail
        description: >-
          {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests to {{ "{{" }} $labels.job {{ "}}" }} in
          {{ "{{" }} $labels.namespace {{ "}}" }} returned a 5xx over the last 5 minutes.
        runbook_url: {{ $runbook }}#taskmanagerhigherrorratio
    - alert: TaskManagerPodNotReady
      # kube-state-metrics (part of kube-prometheus-stack) reports readiness as seen by the kubelet.
      expr: |
        sum by (namespace, pod) (kube_pod_status_ready{namespace="{{ .Release.Namespace }}",pod=~"{{ include "task-manager.fullname" . }}-[a-z0-9]+-[a-z0-9]+",condition="false"}) > 0
      for: 10m
      labels:
        severity: warning
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: A Task Manager pod is not ready
        description: >-
          Pod {{ "{{" }} $labels.pod {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} has failed its
          readiness probe (/readyz) for 10 minutes and receives no traffic.
        runbook_url: {{ $runbook }}#taskmanagerpodnotready
    - alert: TaskManagerTargetDown
      # Prometheus cannot scrape the metrics port: the pod is gone, crash-looping or blocked.
      expr: |
        up{ {{- $app -}} } == 0
      for: 5m
      labels:
        severity: warning
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: Prometheus cannot scrape a Task Manager pod
        description: >-
          Scrapes of {{ "{{" }} $labels.instance {{ "}}" }} ({{ "{{" }} $labels.job {{ "}}" }} in
          {{ "{{" }} $labels.namespace {{ "}}" }}) have failed for 5 minutes.
        runbook_url: {{ $runbook }}#taskmanagertargetdown
- name: task-manager.trace-pipeline
  rules:
    - alert: TaskManagerCollectorDroppingSpans
      # Spans the collector refused (memory_limiter or receiver) or failed to export or enqueue.
      expr: |
        sum by (namespace, job) (
            rate(otelcol_receiver_refused_spans{ {{- $col -}} }[5m])
          or rate(otelcol_exporter_send_failed_spans{ {{- $col -}} }[5m])
          or rate(otelcol_exporter_enqueue_failed_spans{ {{- $col -}} }[5m])
        ) > 0
      for: 5m
      labels:
        severity: warning
        {{- with $.Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: The OpenTelemetry Collector is dropping spans
        description: >-
          {{ "{{" }} $labels.job {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} drops
          {{ "{{" }} $value | humanize {{ "}}" }} spans/s (refused, failed to export or to enqueue); traces
          in Jaeger are incomplete.
        runbook_url: {{ $runbook }}#taskmanagercollectordroppingspans
{{- end }}
