{{/*
Names, labels and the settings both services share. Every name is cut to
63 characters, the limit of a DNS label and of a label value.
*/}}

{{- define "train-conductor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<release>-<chart>`, or the release name alone when it already holds the chart's name. */}}
{{- define "train-conductor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "train-conductor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Per-component full names: `<fullname>-api`, `<fullname>-controller`, `<fullname>-redis`. */}}
{{- define "train-conductor.api.fullname" -}}
{{- printf "%s-api" (include "train-conductor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "train-conductor.api.headlessName" -}}
{{- printf "%s-api-headless" (include "train-conductor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "train-conductor.controller.fullname" -}}
{{- printf "%s-controller" (include "train-conductor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "train-conductor.redis.fullname" -}}
{{- printf "%s-redis" (include "train-conductor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "train-conductor.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "train-conductor.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "train-conductor.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "train-conductor.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Selector labels: what a Service, a PDB or a Deployment selects pods by.
They never change over the life of a release. Takes (dict "context" $ "component" "api").
*/}}
{{- define "train-conductor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "train-conductor.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Every label of a component's resources. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.labels" -}}
helm.sh/chart: {{ include "train-conductor.chart" .context }}
{{ include "train-conductor.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: train-conductor
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* `repository:tag`, the tag defaulting to the appVersion. Takes (dict "context" $ "image" .Values.api.image). */}}
{{- define "train-conductor.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .context.Chart.AppVersion | toString) }}
{{- end }}

{{/* The namespace training Jobs run in. */}}
{{- define "train-conductor.trainingNamespace" -}}
{{- default .Release.Namespace .Values.training.namespace }}
{{- end }}

{{- define "train-conductor.leaseName" -}}
{{- default (include "train-conductor.controller.fullname" .) .Values.controller.leaderElection.leaseName }}
{{- end }}

{{/* The Secret and key of the Redis password, empty when there is none. */}}
{{- define "train-conductor.redis.passwordSecret" -}}
{{- if .Values.redis.existingSecret }}
{{- .Values.redis.existingSecret }}
{{- else if and .Values.redis.enabled .Values.redis.auth.enabled }}
{{- include "train-conductor.redis.fullname" . }}
{{- end }}
{{- end }}

{{- define "train-conductor.redis.passwordKey" -}}
{{- if .Values.redis.existingSecret }}
{{- .Values.redis.existingSecretPasswordKey }}
{{- else }}
{{- print "password" }}
{{- end }}
{{- end }}

{{- define "train-conductor.redis.caDir" -}}
/etc/train-conductor/redis-ca
{{- end }}

{{/* The Redis settings of both services, as a dict of settings names. */}}
{{- define "train-conductor.redisSettings" -}}
{{- $redis := .Values.redis }}
{{- $url := $redis.url }}
{{- if $redis.enabled }}
{{- $url = printf "redis://%s.%s.svc:6379/0" (include "train-conductor.redis.fullname" .) .Release.Namespace }}
{{- end }}
{{- $settings := dict
  "redis_url" $url
  "redis_key_prefix" $redis.keyPrefix
  "redis_socket_timeout_seconds" (float64 $redis.client.socketTimeoutSeconds)
  "redis_connect_timeout_seconds" (float64 $redis.client.connectTimeoutSeconds)
  "redis_retries" (int64 $redis.client.retries)
  "redis_max_connections" (int64 $redis.client.maxConnections)
}}
{{- with $redis.username }}
{{- $_ := set $settings "redis_username" . }}
{{- end }}
{{- with $redis.sentinel.hosts }}
{{- $_ := set $settings "redis_sentinels" . }}
{{- $_ := set $settings "redis_sentinel_master" $redis.sentinel.masterName }}
{{- end }}
{{- if $redis.tls.caSecret }}
{{- $_ := set $settings "redis_ca_file" (printf "%s/%s" (include "train-conductor.redis.caDir" .) $redis.tls.caKey) }}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/* Environment every service container gets: the Redis password, and the OTLP endpoint of the collector sidecar. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.commonEnv" -}}
{{- $secret := include "train-conductor.redis.passwordSecret" .context }}
{{- if $secret }}
- name: TC_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "train-conductor.redis.passwordKey" .context }}
{{- end }}
{{- if (index .context.Values .component).otelCollector.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: http://127.0.0.1:4317
- name: OTEL_SERVICE_NAME
  value: trainconductor-{{ .component }}
{{- end }}
{{- end }}

{{/* Mounts every service container gets. Takes the root context. */}}
{{- define "train-conductor.commonVolumeMounts" -}}
- name: config
  mountPath: /etc/train-conductor/config.yaml
  subPath: config.yaml
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.redis.tls.caSecret }}
- name: redis-ca
  mountPath: {{ include "train-conductor.redis.caDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Volumes every service pod gets. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.commonVolumes" -}}
- name: config
  configMap:
    name: {{ include (printf "train-conductor.%s.fullname" .component) .context }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .context.Values.redis.tls.caSecret }}
- name: redis-ca
  secret:
    secretName: {{ .context.Values.redis.tls.caSecret }}
    items:
      - key: {{ .context.Values.redis.tls.caKey }}
        path: {{ .context.Values.redis.tls.caKey }}
{{- end }}
{{- if (index .context.Values .component).otelCollector.enabled }}
- name: otel-collector-config
  configMap:
    name: {{ include (printf "train-conductor.%s.fullname" .component) .context }}
    items:
      - key: otel-collector.yaml
        path: config.yaml
{{- end }}
{{- end }}

{{/* The OpenTelemetry Collector sidecar. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.otelCollectorContainer" -}}
{{- $values := index .context.Values .component }}
- name: otel-collector
  image: {{ include "train-conductor.image" (dict "context" .context "image" $values.otelCollector.image) }}
  imagePullPolicy: {{ $values.otelCollector.image.pullPolicy }}
  args: ["--config=/etc/otelcol/config.yaml"]
  securityContext:
    {{- toYaml $values.securityContext | nindent 4 }}
  {{- with $values.otelCollector.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: otel-collector-config
      mountPath: /etc/otelcol
      readOnly: true
{{- end }}

{{/*
Refuses values that the schema cannot judge alone. Included by the API's
Deployment, which every install renders.
*/}}
{{- define "train-conductor.validate" -}}
{{- if and (eq .Values.auth.mode "none") (not .Values.auth.allowInsecureNone) }}
{{- fail "auth.mode=none lets any caller act as any user (the API trusts the x-tc-user metadata). Set auth.allowInsecureNone=true to accept that, for development or a network where every caller is trusted." }}
{{- end }}
{{- if le (float64 .Values.api.terminationGracePeriodSeconds) (float64 .Values.api.drainSeconds) }}
{{- fail (printf "api.terminationGracePeriodSeconds (%v) must exceed api.drainSeconds (%v), or Kubernetes kills the API while it drains." .Values.api.terminationGracePeriodSeconds .Values.api.drainSeconds) }}
{{- end }}
{{- if and .Values.redis.enabled .Values.redis.sentinel.hosts }}
{{- fail "redis.sentinel.hosts points at your own Sentinels; the bundled Redis (redis.enabled) is a single instance without Sentinel. Set one or the other." }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.redis.url) }}
{{- fail "Set redis.url to your Redis, or redis.enabled=true to run one in the release." }}
{{- end }}
{{- if ge (int .Values.controller.leaderElection.renewDeadlineSeconds) (int .Values.controller.leaderElection.leaseDurationSeconds) }}
{{- fail "controller.leaderElection.renewDeadlineSeconds must be below leaseDurationSeconds." }}
{{- end }}
{{- end }}

{{/* Spreads a component's replicas over nodes when the values name no affinity. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.affinity" -}}
{{- $values := index .context.Values .component }}
{{- if $values.affinity }}
{{- toYaml $values.affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "train-conductor.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}
