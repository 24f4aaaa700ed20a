{{/* Name of the chart, overridable. */}}
{{- define "otel-collector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<name> unless overridden. The parent's "task-manager.subchartFullname" and "task-manager.subchartName" compute the same names: change them together. */}}
{{- define "otel-collector.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "otel-collector.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Selector labels: never change across upgrades. */}}
{{- define "otel-collector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otel-collector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the pod template: no chart or app version, so a chart bump restarts no pod. */}}
{{- define "otel-collector.podLabels" -}}
{{ include "otel-collector.selectorLabels" . }}
app.kubernetes.io/component: trace-collector
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Recommended labels. */}}
{{- define "otel-collector.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "otel-collector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: trace-collector
app.kubernetes.io/part-of: task-manager
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Pull secrets of the pod: imagePullSecrets and global.imagePullSecrets (set by the parent), each once. */}}
{{- define "otel-collector.imagePullSecrets" -}}
{{- $secrets := concat .Values.imagePullSecrets (dig "imagePullSecrets" (list) (.Values.global | default dict)) | uniq }}
{{- with $secrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Image reference: global.imageRegistry or registry, then repository, then @digest or :tag (default appVersion). */}}
{{- define "otel-collector.image" -}}
{{- $registry := default .Values.image.registry (dig "imageRegistry" "" (.Values.global | default dict)) }}
{{- $repo := printf "%s/%s" $registry .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Export endpoint: the configured one, or the Jaeger subchart's Service of this release. */}}
{{- define "otel-collector.exporterEndpoint" -}}
{{- default (printf "%s-jaeger:4317" .Release.Name) .Values.exporter.endpoint }}
{{- end }}

{{/* Name of the Secret the chart stores exporter.headers in. */}}
{{- define "otel-collector.headersSecretName" -}}
{{- printf "%s-headers" (include "otel-collector.fullname" .) }}
{{- end }}

{{/* Directory of the mounted export header files. */}}
{{- define "otel-collector.headersDir" -}}
/etc/otelcol/headers
{{- end }}

{{/* File (and Secret key) carrying one export header's value: x-api-key -> OTLP_HEADER_X_API_KEY. */}}
{{- define "otel-collector.headerEnvName" -}}
{{- printf "OTLP_HEADER_%s" (regexReplaceAll "[^A-Z0-9]" (upper .) "_") }}
{{- end }}

{{/*
Export headers as YAML `headers: [{header, env, secret, key}]`: each value stays in a Secret (the
chart's for exporter.headers, the user's for exporter.existingSecretHeaders), reaches the container
as the file `<headersDir>/<env>` of a read-only Secret volume (not as an environment variable, so it
shows in neither `kubectl describe` nor the process environment), and the config names only
`${file:<headersDir>/<env>}`, never the value.
*/}}
{{- define "otel-collector.exportHeaders" -}}
{{- $e := .Values.exporter }}
{{- if and $e.existingSecretHeaders (not $e.existingSecret) }}
{{- fail "otel-collector.exporter.existingSecretHeaders is set but exporter.existingSecret is empty: set the name of the Secret holding those keys" }}
{{- end }}
{{- if and $e.existingSecret (not $e.existingSecretHeaders) }}
{{- fail "otel-collector.exporter.existingSecret is set but exporter.existingSecretHeaders is empty: list the headers to read from it, as {header-name: key}" }}
{{- end }}
{{- $entries := list }}
{{- $secret := include "otel-collector.headersSecretName" . }}
{{- range $header, $_ := $e.headers }}
{{- $env := include "otel-collector.headerEnvName" $header }}
{{- $entries = append $entries (dict "header" $header "env" $env "secret" $secret "key" $env) }}
{{- end }}
{{- range $header, $key := $e.existingSecretHeaders }}
{{- $entries = append $entries (dict "header" $header "env" (include "otel-collector.headerEnvName" $header) "secret" $e.existingSecret "key" $key) }}
{{- end }}
{{- $seen := dict }}
{{- range $entries }}
{{- if hasKey $seen .env }}
{{- fail (printf "otel-collector.exporter: headers %q and %q are the same header (both become %s): keep one, in headers or existingSecretHeaders" (get $seen .env) .header .env) }}
{{- end }}
{{- $_ := set $seen .env .header }}
{{- end }}
{{- toYaml (dict "headers" $entries) }}
{{- end }}

{{/* The collector configuration: otlp -> memory_limiter, batch -> otlp, with health_check. */}}
{{- define "otel-collector.config" -}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: {{ .Values.memoryCheckInterval }}
    limit_percentage: {{ .Values.memoryLimitPercentage }}
    spike_limit_percentage: {{ .Values.memorySpikeLimitPercentage }}
  batch:
    timeout: {{ .Values.batch.timeout }}
    send_batch_size: {{ .Values.batch.sendBatchSize }}
exporters:
  otlp:
    endpoint: {{ include "otel-collector.exporterEndpoint" . }}
    tls:
      insecure: {{ .Values.exporter.insecure }}
    {{- with (include "otel-collector.exportHeaders" . | fromYaml).headers }}
    # Values are files mounted from Secrets; this ConfigMap holds none.
    headers:
      {{- range . }}
      {{ .header | quote }}: "${file:{{ include "otel-collector.headersDir" $ }}/{{ .env }}}"
      {{- end }}
    {{- end }}
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 0.0.0.0
                port: 8888
{{- end }}

{{/* Restricted Pod Security: pod level. */}}
{{- define "otel-collector.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Restricted Pod Security: container level. */}}
{{- define "otel-collector.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
