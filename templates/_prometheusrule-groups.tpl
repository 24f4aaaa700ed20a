{{/*
The alert groups of the PrometheusRule (spec.groups). The observability work owns this file: the
SLO burn-rate, error-ratio and trace-pipeline alerts, each with a runbook section in docs/runbook.md.
Context: the chart root; selectors use the release namespace and the Service's job label.
*/}}
{{- define "task-manager.prometheusRule.groups" -}}
- name: task-manager.health
  rules:
    - alert: TaskManagerPodNotReady
      expr: |
        sum by (namespace, pod) (
          kube_pod_status_ready{condition="false", namespace="{{ .Release.Namespace }}", pod=~"{{ include "task-manager.fullname" . }}-.*"}
        ) > 0
      for: 10m
      labels:
        severity: warning
        {{- with .Values.metrics.prometheusRule.additionalAlertLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: A task-manager pod has not been ready for 10 minutes.
        description: Pod {{ "{{ $labels.namespace }}" }}/{{ "{{ $labels.pod }}" }} fails its readiness probe (GET /readyz), so it receives no traffic.
        runbook_url: https://github.com/task-manager/task-manager/blob/main/docs/runbook.md#taskmanagerpodnotready
{{- end }}
