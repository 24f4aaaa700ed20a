{{/*
Rule groups of the chart's PrometheusRule (templates/prometheusrule.yaml includes
"task-manager.prometheusRule.groups"). Owned by the observability work (issue 4); every alert links a
section of docs/runbook.md, and tests/chart/rules/ proves with promtool that each fires and stays
silent when it should. Objectives come from metrics.prometheusRule.slo (default: availability 99.9%
of requests without a 5xx, latency 99% of requests within 0.5 s, a bucket of the service's
histogram), both over 30 days; metrics.prometheusRule.alerts turns each alert off. Burn-rate
windows follow the multi-window multi-burn-rate pattern of the Google SRE workbook (ch. 5); the
error and slow ratios of every window are recording rules, and the windows above 5m sum the
recorded 5m rates of one series per release instead of asking for a 1d or 3d rate() over every
raw series at each evaluation.
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

{{/* The windows of the burn-rate alerts; each has a recorded error ratio and slow ratio. */}}
{{- define "task-manager.prometheusRule.windows" -}}
5m 30m 1h 2h 6h 1d 3d
{{- end }}

{{/*
The latency threshold as the service's histogram writes its `le` label (Python's float repr:
0.5, 1.0, 10.0), whether the value was given as a string or, through --set, as a number.
*/}}
{{- define "task-manager.prometheusRule.le" -}}
{{- $text := .Values.metrics.prometheusRule.slo.latency.thresholdSeconds | float64 | toString }}
{{- if contains "." $text }}{{ $text }}{{ else }}{{ $text }}.0{{ end }}
{{- end }}

{{/* Recording rules: per-release 5m rates, and the error and slow ratios of every window. */}}
{{- define "task-manager.prometheusRule.recordingRules" -}}
{{- $app := include "task-manager.prometheusRule.appSelector" . -}}
{{- $le := include "task-manager.prometheusRule.le" . -}}
- record: task_manager:http_requests:rate5m
  expr: sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $app -}} }[5m]))
- record: task_manager:http_request_errors:rate5m
  # Zero, not absent, when there are requests but no 5xx.
  expr: sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $app -}} ,status=~"5.."}[5m])) or sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $app -}} }[5m])) * 0
- record: task_manager:http_requests_within_threshold:rate5m
  # Requests served within metrics.prometheusRule.slo.latency.thresholdSeconds (a bucket bound).
  expr: sum by (namespace, job) (rate(http_server_request_duration_seconds_bucket{ {{- $app -}} ,le="{{ $le }}"}[5m]))
{{- range splitList " " (include "task-manager.prometheusRule.windows" .) }}
{{- if eq . "5m" }}
- record: task_manager:slo_errors:ratio_rate5m
  expr: task_manager:http_request_errors:rate5m{ {{- $app -}} } / task_manager:http_requests:rate5m{ {{- $app -}} }
- record: task_manager:slo_slow:ratio_rate5m
  expr: 1 - task_manager:http_requests_within_threshold:rate5m{ {{- $app -}} } / task_manager:http_requests:rate5m{ {{- $app -}} }
{{- else }}
- record: task_manager:slo_errors:ratio_rate{{ . }}
  expr: sum_over_time(task_manager:http_request_errors:rate5m{ {{- $app -}} }[{{ . }}]) / sum_over_time(task_manager:http_requests:rate5m{ {{- $app -}} }[{{ . }}])
- record: task_manager:slo_slow:ratio_rate{{ . }}
  expr: 1 - sum_over_time(task_manager:http_requests_within_threshold:rate5m{ {{- $app -}} }[{{ . }}]) / sum_over_time(task_manager:http_requests:rate5m{ {{- $app -}} }[{{ . }}])
{{- end }}
{{- end }}
{{- end }}

{{/*
A multi-window burn-rate condition, for dict "root" . "sli" "errors"|"slow" "budget" BUDGET
"pairs" (list (list LONG SHORT FACTOR) ...): any pair whose long and short windows both burn
faster than FACTOR times the budget.
*/}}
{{- define "task-manager.prometheusRule.burn" -}}
{{- $app := include "task-manager.prometheusRule.appSelector" .root -}}
{{- $conditions := list -}}
{{- range .pairs -}}
{{- $long := printf "task_manager:slo_%s:ratio_rate%s{%s} > (%s * %s)" $.sli (index . 0) $app (index . 2) $.budget -}}
{{- $short := printf "task_manager:slo_%s:ratio_rate%s{%s} > (%s * %s)" $.sli (index . 1) $app (index . 2) $.budget -}}
{{- $conditions = append $conditions (printf "(\n  %s\nand\n  %s\n)" $long $short) -}}
{{- end -}}
{{- join "\nor\n" $conditions -}}
{{- end }}

{{/*
Rule groups for dict "root" . "name" NAME "alerts" (list ALERT...): each enabled alert's rule,
rendered from the template "task-manager.alert.<ALERT>"; the group is left out when none is on.
*/}}
{{- define "task-manager.prometheusRule.alertGroup" -}}
{{- $toggles := .root.Values.metrics.prometheusRule.alerts -}}
{{- $enabled := list -}}
{{- range .alerts -}}
{{- if index $toggles . }}{{ $enabled = append $enabled . }}{{ end -}}
{{- end -}}
{{- if $enabled }}
- name: {{ .name }}
  rules:
    {{- range $enabled }}
    {{- include (printf "task-manager.alert.%s" .) $.root | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Labels of every alert: severity, extra labels, additionalAlertLabels; for dict "root" . "labels" MAP. */}}
{{- define "task-manager.prometheusRule.alertLabels" -}}
labels:
  {{- toYaml .labels | nindent 2 }}
  {{- with .root.Values.metrics.prometheusRule.additionalAlertLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "task-manager.prometheusRule.groups" -}}
- name: task-manager.slo.recording
  rules:
    {{- include "task-manager.prometheusRule.recordingRules" . | nindent 4 }}
{{- include "task-manager.prometheusRule.alertGroup" (dict "root" . "name" "task-manager.slo" "alerts" (list "TaskManagerAvailabilityBudgetBurnFast" "TaskManagerAvailabilityBudgetBurnSlow" "TaskManagerLatencyBudgetBurnFast" "TaskManagerLatencyBudgetBurnSlow")) }}
{{- include "task-manager.prometheusRule.alertGroup" (dict "root" . "name" "task-manager.health" "alerts" (list "TaskManagerHighErrorRatio" "TaskManagerPodNotReady" "TaskManagerTargetDown")) }}
{{- include "task-manager.prometheusRule.alertGroup" (dict "root" . "name" "task-manager.trace-pipeline" "alerts" (list "TaskManagerCollectorDroppingSpans")) }}
{{- end }}

{{- define "task-manager.prometheusRule.runbook" -}}
https://github.com/task-manager/task-manager/blob/main/docs/runbook.md
{{- end }}

{{/* Error budgets as PromQL (1 - objective), and the objectives as the alerts' texts say them. */}}
{{- define "task-manager.prometheusRule.availabilityBudget" -}}
(1 - {{ .Values.metrics.prometheusRule.slo.availability.objective }} / 100)
{{- end }}
{{- define "task-manager.prometheusRule.latencyBudget" -}}
(1 - {{ .Values.metrics.prometheusRule.slo.latency.objective }} / 100)
{{- end }}
{{- define "task-manager.prometheusRule.latencyObjective" -}}
{{ .Values.metrics.prometheusRule.slo.latency.objective }}% of requests within {{ mulf (float64 .Values.metrics.prometheusRule.slo.latency.thresholdSeconds) 1000 }} ms
{{- end }}

{{- define "task-manager.alert.TaskManagerAvailabilityBudgetBurnFast" -}}
- alert: TaskManagerAvailabilityBudgetBurnFast
  # Pages: at 14.4x the budget is gone in ~2 days (2% of 30d in 1h), at 6x in 5 days (5% in 6h).
  expr: |
    {{- include "task-manager.prometheusRule.burn" (dict "root" . "sli" "errors" "budget" (include "task-manager.prometheusRule.availabilityBudget" .) "pairs" (list (list "1h" "5m" "14.4") (list "6h" "30m" "6"))) | nindent 4 }}
  for: 2m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "critical" "slo" "availability")) | nindent 2 }}
  annotations:
    summary: Task Manager is burning its availability error budget fast
    description: >-
      {{ "{{" }} $labels.job {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} returns 5xx on
      {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests; at this rate the 30-day budget of the
      {{ .Values.metrics.prometheusRule.slo.availability.objective }}% availability objective is exhausted within days.
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanageravailabilitybudgetburn
{{- end }}

{{- define "task-manager.alert.TaskManagerAvailabilityBudgetBurnSlow" -}}
- alert: TaskManagerAvailabilityBudgetBurnSlow
  # Tickets: 3x over 1d (10% of the budget) or 1x over 3d (10%).
  expr: |
    {{- include "task-manager.prometheusRule.burn" (dict "root" . "sli" "errors" "budget" (include "task-manager.prometheusRule.availabilityBudget" .) "pairs" (list (list "1d" "2h" "3") (list "3d" "6h" "1"))) | nindent 4 }}
  for: 15m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "warning" "slo" "availability")) | nindent 2 }}
  annotations:
    summary: Task Manager is slowly burning its availability error budget
    description: >-
      {{ "{{" }} $labels.job {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} returns 5xx on
      {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests, above what the {{ .Values.metrics.prometheusRule.slo.availability.objective }}% availability
      objective allows over 30 days.
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanageravailabilitybudgetburn
{{- end }}

{{- define "task-manager.alert.TaskManagerLatencyBudgetBurnFast" -}}
- alert: TaskManagerLatencyBudgetBurnFast
  expr: |
    {{- include "task-manager.prometheusRule.burn" (dict "root" . "sli" "slow" "budget" (include "task-manager.prometheusRule.latencyBudget" .) "pairs" (list (list "1h" "5m" "14.4") (list "6h" "30m" "6"))) | nindent 4 }}
  for: 2m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "critical" "slo" "latency")) | nindent 2 }}
  annotations:
    summary: Task Manager is burning its latency error budget fast
    description: >-
      {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests to {{ "{{" }} $labels.job {{ "}}" }} in
      {{ "{{" }} $labels.namespace {{ "}}" }} are slower than the objective ({{ include "task-manager.prometheusRule.latencyObjective" . }} over 30 days).
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanagerlatencybudgetburn
{{- end }}

{{- define "task-manager.alert.TaskManagerLatencyBudgetBurnSlow" -}}
- alert: TaskManagerLatencyBudgetBurnSlow
  expr: |
    {{- include "task-manager.prometheusRule.burn" (dict "root" . "sli" "slow" "budget" (include "task-manager.prometheusRule.latencyBudget" .) "pairs" (list (list "1d" "2h" "3") (list "3d" "6h" "1"))) | nindent 4 }}
  for: 15m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "warning" "slo" "latency")) | nindent 2 }}
  annotations:
    summary: Task Manager is slowly burning its latency error budget
    description: >-
      {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests to {{ "{{" }} $labels.job {{ "}}" }} in
      {{ "{{" }} $labels.namespace {{ "}}" }} are slower than the objective allows ({{ include "task-manager.prometheusRule.latencyObjective" . }} over 30 days).
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanagerlatencybudgetburn
{{- end }}

{{- define "task-manager.alert.TaskManagerHighErrorRatio" -}}
{{- $app := include "task-manager.prometheusRule.appSelector" . -}}
- alert: TaskManagerHighErrorRatio
  # A symptom alert independent of the SLO maths: more than 5% of requests fail right now.
  expr: |
    ({{ include "task-manager.prometheusRule.errorRatio" (list . "5m") | nindent 4 | trim }}) > 0.05
    and
    sum by (namespace, job) (rate(http_server_request_duration_seconds_count{ {{- $app -}} }[5m])) > 0.1
  for: 10m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "warning")) | nindent 2 }}
  annotations:
    summary: More than 5% of Task Manager requests fail
    description: >-
      {{ "{{" }} $value | humanizePercentage {{ "}}" }} of requests to {{ "{{" }} $labels.job {{ "}}" }} in
      {{ "{{" }} $labels.namespace {{ "}}" }} returned a 5xx over the last 5 minutes.
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanagerhigherrorratio
{{- end }}

{{- define "task-manager.alert.TaskManagerPodNotReady" -}}
- alert: TaskManagerPodNotReady
  # kube-state-metrics (part of kube-prometheus-stack) reports readiness as seen by the kubelet.
  expr: |
    sum by (namespace, pod) (kube_pod_status_ready{namespace="{{ .Release.Namespace }}",pod=~"{{ include "task-manager.fullname" . }}-[a-z0-9]+-[a-z0-9]+",condition="false"}) > 0
  for: 10m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "warning")) | nindent 2 }}
  annotations:
    summary: A Task Manager pod is not ready
    description: >-
      Pod {{ "{{" }} $labels.pod {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} has failed its
      readiness probe (/readyz) for 10 minutes and receives no traffic.
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanagerpodnotready
{{- end }}

{{- define "task-manager.alert.TaskManagerTargetDown" -}}
{{- $app := include "task-manager.prometheusRule.appSelector" . -}}
- alert: TaskManagerTargetDown
  # Prometheus cannot scrape the metrics port: the pod is gone, crash-looping or blocked.
  expr: |
    up{ {{- $app -}} } == 0
  for: 5m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "warning")) | nindent 2 }}
  annotations:
    summary: Prometheus cannot scrape a Task Manager pod
    description: >-
      Scrapes of {{ "{{" }} $labels.instance {{ "}}" }} ({{ "{{" }} $labels.job {{ "}}" }} in
      {{ "{{" }} $labels.namespace {{ "}}" }}) have failed for 5 minutes.
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanagertargetdown
{{- end }}

{{- define "task-manager.alert.TaskManagerCollectorDroppingSpans" -}}
{{- $col := include "task-manager.prometheusRule.collectorSelector" . -}}
- alert: TaskManagerCollectorDroppingSpans
  # Spans the collector refused (memory_limiter or receiver) or failed to export or enqueue.
  expr: |
    sum by (namespace, job) (
        rate(otelcol_receiver_refused_spans{ {{- $col -}} }[5m])
      or rate(otelcol_exporter_send_failed_spans{ {{- $col -}} }[5m])
      or rate(otelcol_exporter_enqueue_failed_spans{ {{- $col -}} }[5m])
    ) > 0
  for: 5m
  {{- include "task-manager.prometheusRule.alertLabels" (dict "root" . "labels" (dict "severity" "warning")) | nindent 2 }}
  annotations:
    summary: The OpenTelemetry Collector is dropping spans
    description: >-
      {{ "{{" }} $labels.job {{ "}}" }} in {{ "{{" }} $labels.namespace {{ "}}" }} drops
      {{ "{{" }} $value | humanize {{ "}}" }} spans/s (refused, failed to export or to enqueue); traces
      in Jaeger are incomplete.
    runbook_url: {{ include "task-manager.prometheusRule.runbook" . }}#taskmanagercollectordroppingspans
{{- end }}
