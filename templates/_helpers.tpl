{{/* Name of the chart, overridable. */}}
{{- define "task-manager.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources: <release>-task-manager, or <release> when it already contains the name. */}}
{{- define "task-manager.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "task-manager.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "task-manager.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of the API pods: never change across upgrades. */}}
{{- define "task-manager.selectorLabels" -}}
app.kubernetes.io/name: {{ include "task-manager.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{/* Recommended labels without the component (for the migration Job and the test pod). */}}
{{- define "task-manager.baseLabels" -}}
helm.sh/chart: {{ include "task-manager.chart" . }}
app.kubernetes.io/name: {{ include "task-manager.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: task-manager
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ tpl (toYaml .) $ }}
{{- end }}
{{- end }}

{{/*
Labels of a pod template, for dict "root" . "component" NAME: the selector labels, the component,
commonLabels and podLabels, none of which change with the chart or app version, so a chart bump that
changes nothing in the pod restarts nothing (the version labels stay on the objects' own metadata).
*/}}
{{- define "task-manager.podLabels" -}}
app.kubernetes.io/name: {{ include "task-manager.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .root.Values.commonLabels }}
{{ tpl (toYaml .) $.root }}
{{- end }}
{{- with .root.Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Kubernetes recommended labels of the API's resources. */}}
{{- define "task-manager.labels" -}}
{{ include "task-manager.baseLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{/*
metadata.annotations of a resource, for dict "root" . "annotations" MAP: commonAnnotations plus MAP (which
wins on a shared key, so hook and keep annotations stay), each value rendered with tpl; nothing when
both are empty.
*/}}
{{- define "task-manager.annotations" -}}
{{- $all := merge (dict) (.annotations | default dict) (.root.Values.commonAnnotations | default dict) }}
{{- with $all }}
annotations:
  {{- range $key, $value := . }}
  {{ $key }}: {{ tpl (toString $value) $.root | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Name of the ServiceAccount the API pods run as. */}}
{{- define "task-manager.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "task-manager.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Registry of an image, for dict "root" . "registry" REGISTRY: global.imageRegistry when set, else REGISTRY. */}}
{{- define "task-manager.imageRegistry" -}}
{{- default .registry (dig "imageRegistry" "" (.root.Values.global | default dict)) }}
{{- end }}

{{/* Pull secrets of the chart's pods: imagePullSecrets and global.imagePullSecrets, each once. */}}
{{- define "task-manager.imagePullSecrets" -}}
{{- $secrets := concat .Values.imagePullSecrets (dig "imagePullSecrets" (list) (.Values.global | default dict)) | uniq }}
{{- with $secrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* API image: registry/repository, then @digest or :tag (default appVersion). */}}
{{- define "task-manager.image" -}}
{{- $repo := printf "%s/%s" (include "task-manager.imageRegistry" (dict "root" . "registry" .Values.image.registry)) .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Image of the helm test pod: tests.image, each part defaulting to the API image. */}}
{{- define "task-manager.testImage" -}}
{{- $t := .Values.tests.image }}
{{- if or $t.registry $t.repository $t.tag }}
{{- $registry := include "task-manager.imageRegistry" (dict "root" . "registry" (default .Values.image.registry $t.registry)) }}
{{- printf "%s/%s:%s" $registry (default .Values.image.repository $t.repository) (default (default .Chart.AppVersion .Values.image.tag) $t.tag) }}
{{- else }}
{{- include "task-manager.image" . }}
{{- end }}
{{- end }}

{{/* True ("true") when the database is PostgreSQL. */}}
{{- define "task-manager.isPostgres" -}}
{{- if eq .Values.database.type "postgresql" }}true{{ end }}
{{- end }}

{{/* True when a PostgreSQL hook Job migrates, so the pods must not. */}}
{{- define "task-manager.hookMigrates" -}}
{{- if and (include "task-manager.isPostgres" .) .Values.migration.enabled }}true{{ end }}
{{- end }}

{{/* Name of the Secret holding the chart-managed tokens and database URL. */}}
{{- define "task-manager.secretName" -}}
{{- include "task-manager.fullname" . }}
{{- end }}

{{/* Secret and key of the tokens file. */}}
{{- define "task-manager.tokensSecretName" -}}
{{- default (include "task-manager.secretName" .) .Values.auth.existingSecret }}
{{- end }}
{{- define "task-manager.tokensSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}tokens{{ end }}
{{- end }}

{{/* Secret and key of the PostgreSQL URL. */}}
{{- define "task-manager.databaseSecretName" -}}
{{- default (include "task-manager.secretName" .) .Values.database.postgresql.existingSecret }}
{{- end }}
{{- define "task-manager.databaseSecretKey" -}}
{{- if .Values.database.postgresql.existingSecret }}{{ .Values.database.postgresql.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{/* Directory and file of the mounted database URL (TASK_MANAGER_DATABASE_URL_FILE). */}}
{{- define "task-manager.databaseUrlDir" -}}
/etc/task-manager/database
{{- end }}
{{- define "task-manager.databaseUrlFile" -}}
{{- include "task-manager.databaseUrlDir" . }}/database-url
{{- end }}

{{/* Directory and file of the mounted OTLP export headers (OTEL_EXPORTER_OTLP_HEADERS_FILE). */}}
{{- define "task-manager.otlpHeadersDir" -}}
/etc/task-manager/otlp-headers
{{- end }}
{{- define "task-manager.otlpHeadersFile" -}}
{{- include "task-manager.otlpHeadersDir" . }}/headers
{{- end }}

{{/*
Secrets reach the API container as files, one read-only Secret volume each (tokens, database URL,
OTLP export headers), named by the ConfigMap's *_FILE variables: no secret value is in the pod's
environment, `kubectl describe` or the process environment.
*/}}
{{- define "task-manager.secretVolumes" -}}
{{- if .Values.auth.enabled }}
- name: tokens
  secret:
    secretName: {{ include "task-manager.tokensSecretName" . }}
    items:
      - key: {{ include "task-manager.tokensSecretKey" . }}
        path: tokens
{{- end }}
{{- if include "task-manager.isPostgres" . }}
- name: database-url
  secret:
    secretName: {{ include "task-manager.databaseSecretName" . }}
    items:
      - key: {{ include "task-manager.databaseSecretKey" . }}
        path: database-url
{{- end }}
{{- if include "task-manager.otlpHeaders" . }}
- name: otlp-headers
  secret:
    secretName: {{ .Values.tracing.headers.existingSecret }}
    items:
      - key: {{ .Values.tracing.headers.existingSecretKey }}
        path: headers
{{- end }}
{{- end }}
{{- define "task-manager.secretVolumeMounts" -}}
{{- if .Values.auth.enabled }}
- name: tokens
  mountPath: /etc/task-manager/tokens
  readOnly: true
{{- end }}
{{- if include "task-manager.isPostgres" . }}
- name: database-url
  mountPath: {{ include "task-manager.databaseUrlDir" . }}
  readOnly: true
{{- end }}
{{- if include "task-manager.otlpHeaders" . }}
- name: otlp-headers
  mountPath: {{ include "task-manager.otlpHeadersDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* True when the API exports traces with headers from tracing.headers.existingSecret. */}}
{{- define "task-manager.otlpHeaders" -}}
{{- if and .Values.tracing.enabled .Values.tracing.headers.existingSecret (include "task-manager.otlpEndpoint" .) }}true{{ end }}
{{- end }}

{{/* True when the chart renders its own Secret (tokens and/or database URL). */}}
{{- define "task-manager.createSecret" -}}
{{- if or (and .Values.auth.enabled (not .Values.auth.existingSecret)) (and (include "task-manager.isPostgres" .) (not .Values.database.postgresql.existingSecret)) }}true{{ end }}
{{- end }}

{{/* Tokens file content: the configured tokens, else the token already in the cluster, else a new one. */}}
{{- define "task-manager.tokensFile" -}}
{{- if .Values.auth.tokens }}
{{- $lines := list }}
{{- range .Values.auth.tokens }}
{{- $lines = append $lines (printf "%s:%s" .principal .token) }}
{{- end }}
{{- join "\n" $lines }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "task-manager.secretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "tokens") }}
{{- index $existing.data "tokens" | b64dec }}
{{- else }}
{{- printf "admin:%s" (randAlphaNum 40) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Names a subchart renders, for dict "root" . "chart" "otel-collector" (or "jaeger"), computed from its
values exactly as its own "<chart>.name" and "<chart>.fullname" helpers do. Every reference from this
chart to a subchart's Service, pods or metrics goes through these, so a subchart's nameOverride or
fullnameOverride reaches all of them.
*/}}
{{- define "task-manager.subchartName" -}}
{{- $values := index .root.Values .chart }}
{{- default .chart $values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "task-manager.subchartFullname" -}}
{{- $values := index .root.Values .chart }}
{{- if $values.fullnameOverride }}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .root.Release.Name (include "task-manager.subchartName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Port of the collector's OTLP receiver for tracing.protocol: 4317 for grpc, 4318 for http/protobuf. */}}
{{- define "task-manager.otlpDefaultPort" -}}
{{- ternary "4317" "4318" (eq .Values.tracing.protocol "grpc") }}
{{- end }}

{{/* OTLP endpoint of the traces: configured, else the collector subchart's Service, else none. */}}
{{- define "task-manager.otlpEndpoint" -}}
{{- if .Values.tracing.endpoint }}
{{- .Values.tracing.endpoint }}
{{- else if (index .Values "otel-collector" "enabled") }}
{{- printf "http://%s:%s" (include "task-manager.subchartFullname" (dict "root" . "chart" "otel-collector")) (include "task-manager.otlpDefaultPort" .) }}
{{- end }}
{{- end }}

{{/*
TCP port of the OTLP endpoint, for the NetworkPolicy egress: the URL's own port, else the scheme's
(443 for https, 80 for http), so the egress follows tracing.endpoint without a value of its own.
*/}}
{{- define "task-manager.otlpEndpointPort" -}}
{{- $url := urlParse (include "task-manager.otlpEndpoint" .) }}
{{- $hostPort := splitList ":" $url.host }}
{{- if and (gt (len $hostPort) 1) (last $hostPort) }}
{{- last $hostPort }}
{{- else }}
{{- ternary "443" "80" (eq $url.scheme "https") }}
{{- end }}
{{- end }}

{{/* Non-secret settings (environment of the service), shared by the ConfigMap and the hook Job. */}}
{{- define "task-manager.configEnv" -}}
TASK_MANAGER_PORT: "8080"
TASK_MANAGER_METRICS_PORT: "9464"
TASK_MANAGER_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
TASK_MANAGER_THREADS: {{ .Values.config.threads | quote }}
TASK_MANAGER_MAX_BODY_BYTES: {{ .Values.config.maxBodyBytes | int64 | quote }}
TASK_MANAGER_DRAIN_SECONDS: {{ .Values.config.drainSeconds | quote }}
TASK_MANAGER_CONNECTION_LIMIT: {{ .Values.config.connectionLimit | int64 | quote }}
TASK_MANAGER_IDLE_TIMEOUT_SECONDS: {{ .Values.config.idleTimeoutSeconds | quote }}
TASK_MANAGER_MIGRATE_ON_START: {{ ternary "false" "true" (eq (include "task-manager.hookMigrates" .) "true") | quote }}
TASK_MANAGER_AUTH_ENABLED: {{ .Values.auth.enabled | quote }}
{{- if .Values.auth.enabled }}
TASK_MANAGER_AUTH_TOKENS_FILE: /etc/task-manager/tokens/tokens
{{- end }}
{{- if include "task-manager.isPostgres" . }}
TASK_MANAGER_DATABASE_URL_FILE: {{ include "task-manager.databaseUrlFile" . }}
{{- /* The image sets a SQLite URL by default; the service refuses a URL and its file together. */}}
TASK_MANAGER_DATABASE_URL: ""
{{- else }}
TASK_MANAGER_DATABASE_URL: sqlite:////var/lib/task-manager/tasks.db
{{- end }}
OTEL_SERVICE_NAME: {{ default (include "task-manager.name" .) .Values.tracing.serviceName | quote }}
{{- $endpoint := include "task-manager.otlpEndpoint" . }}
{{- if and .Values.tracing.enabled $endpoint }}
OTEL_SDK_DISABLED: "false"
OTEL_EXPORTER_OTLP_ENDPOINT: {{ $endpoint | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: {{ .Values.tracing.protocol | quote }}
{{- if include "task-manager.otlpHeaders" . }}
OTEL_EXPORTER_OTLP_HEADERS_FILE: {{ include "task-manager.otlpHeadersFile" . }}
{{- end }}
OTEL_TRACES_SAMPLER: {{ .Values.tracing.sampler | quote }}
OTEL_TRACES_SAMPLER_ARG: {{ .Values.tracing.samplerRatio | quote }}
{{- else }}
OTEL_SDK_DISABLED: "true"
{{- end }}
{{- $attrs := list (printf "service.namespace=%s" .Release.Namespace) (printf "service.version=%s" .Chart.AppVersion) }}
{{- range $k, $v := .Values.tracing.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
{{- end }}
OTEL_RESOURCE_ATTRIBUTES: {{ join "," $attrs | quote }}
{{- end }}

{{/* Hash of everything the pods read at start, so a change rolls them. */}}
{{- define "task-manager.configChecksum" -}}
{{- $inputs := dict "env" (include "task-manager.configEnv" .) "tokens" .Values.auth.tokens "tokensSecret" .Values.auth.existingSecret "databaseUrl" .Values.database.postgresql.url "databaseSecret" .Values.database.postgresql.existingSecret }}
{{- toJson $inputs | sha256sum }}
{{- end }}

{{/* Seconds Kubernetes waits after SIGTERM: preStop sleep + the service's drain + a margin to exit. */}}
{{- define "task-manager.terminationGracePeriodSeconds" -}}
{{- add (int .Values.config.preStopSleepSeconds) (int (ceil .Values.config.drainSeconds)) 5 }}
{{- end }}

{{/* NetworkPolicy egress rule: DNS (UDP and TCP 53) to any resolver. */}}
{{- define "task-manager.networkPolicy.dnsEgress" -}}
# DNS.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}

{{/* NetworkPolicy egress rule: PostgreSQL (nothing on SQLite). */}}
{{- define "task-manager.networkPolicy.databaseEgress" -}}
{{- if include "task-manager.isPostgres" . -}}
# PostgreSQL.
- ports:
    - port: {{ .Values.database.postgresql.port }}
      protocol: TCP
  {{- with .Values.networkPolicy.databaseTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* NetworkPolicy ingress rule, for dict "root" . "port" PORT: Prometheus scraping PORT. */}}
{{- define "task-manager.networkPolicy.metricsIngress" -}}
# Prometheus scraping the metrics port.
- ports:
    - port: {{ .port }}
      protocol: TCP
  from:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .root.Values.networkPolicy.metricsNamespaceSelector | nindent 10 }}
{{- end }}

{{/* TCP port of the collector's export endpoint (`host:port` or a URL; 4317 without a port). */}}
{{- define "task-manager.collectorExportPort" -}}
{{- $endpoint := (index .Values "otel-collector" "exporter" "endpoint") | default "jaeger:4317" }}
{{- $hostPort := regexReplaceAll "^[a-z]+://" $endpoint "" | splitList "/" | first | splitList ":" }}
{{- if and (gt (len $hostPort) 1) (last $hostPort) }}{{ last $hostPort }}{{ else }}4317{{ end }}
{{- end }}
