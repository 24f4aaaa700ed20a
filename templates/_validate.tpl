{{/*
Guard rails: each one fails the render with a message naming the value to change.
Called once from the Deployment, so it runs on every install, upgrade, template and lint.
*/}}
{{- define "task-manager.validate" -}}
{{- $sqlite := eq .Values.database.type "sqlite" }}
{{- if and $sqlite (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "database.type=sqlite supports exactly one pod, but replicaCount=%d: set replicaCount=1 or database.type=postgresql" (int .Values.replicaCount)) }}
{{- end }}
{{- if and $sqlite .Values.autoscaling.enabled }}
{{- fail "database.type=sqlite cannot be autoscaled: set autoscaling.enabled=false or database.type=postgresql" }}
{{- end }}
{{- if and (eq .Values.database.type "postgresql") (not .Values.database.postgresql.url) (not .Values.database.postgresql.existingSecret) }}
{{- fail "database.type=postgresql needs a database URL: set database.postgresql.url or database.postgresql.existingSecret" }}
{{- end }}
{{- /* helm template (Argo CD, Flux, CI) sees no cluster APIs unless told: global.assumeCrdsInstalled says they exist. */}}
{{- $assume := dig "assumeCrdsInstalled" false (.Values.global | default dict) }}
{{- $monitoring := or (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") $assume }}
{{- if and .Values.metrics.serviceMonitor.enabled (not $monitoring) }}
{{- fail "metrics.serviceMonitor.enabled=true but the cluster has no monitoring.coreos.com/v1 API: install the Prometheus Operator CRDs (e.g. kube-prometheus-stack), set global.assumeCrdsInstalled=true if the cluster has them and helm cannot see it (helm template), or set metrics.serviceMonitor.enabled=false" }}
{{- end }}
{{- if and .Values.metrics.prometheusRule.enabled (not $monitoring) }}
{{- fail "metrics.prometheusRule.enabled=true but the cluster has no monitoring.coreos.com/v1 API: install the Prometheus Operator CRDs (e.g. kube-prometheus-stack), set global.assumeCrdsInstalled=true if the cluster has them and helm cannot see it (helm template), or set metrics.prometheusRule.enabled=false" }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not (or (.Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1") $assume)) }}
{{- fail "httpRoute.enabled=true but the cluster has no gateway.networking.k8s.io/v1 API: install the Gateway API CRDs, set global.assumeCrdsInstalled=true if the cluster has them and helm cannot see it (helm template), or set httpRoute.enabled=false" }}
{{- end }}
{{- $collector := index .Values "otel-collector" }}
{{- if and $collector.enabled .Values.jaeger.enabled (not $collector.exporter.endpoint) }}
{{- /* The collector subchart cannot see Jaeger's values: its default endpoint is <release>-jaeger. */}}
{{- $jaeger := include "task-manager.subchartFullname" (dict "root" . "chart" "jaeger") }}
{{- if ne $jaeger (printf "%s-jaeger" .Release.Name) }}
{{- fail (printf "otel-collector.exporter.endpoint is empty, so the collector exports to <release>-jaeger, but Jaeger is named %s: set otel-collector.exporter.endpoint=%s:4317" $jaeger $jaeger) }}
{{- end }}
{{- end }}
{{- if and .Values.auth.enabled (not .Values.auth.generateToken) (not .Values.auth.existingSecret) (not .Values.auth.tokens) }}
{{- fail "auth.generateToken=false but no token is given: set auth.existingSecret (a Secret you manage, e.g. a SealedSecret or ExternalSecret) or auth.tokens" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas=%d is above autoscaling.maxReplicas=%d" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}
