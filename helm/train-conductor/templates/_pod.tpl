{{/*
What every service pod gets: environment, volumes and their mounts, and
where it is scheduled.
*/}}

{{/* Environment every service container gets: its Redis password, the Sentinels' password, and the OTLP endpoint of the collector sidecar. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.commonEnv" -}}
{{- $credentials := include "train-conductor.redis.credentials" . | fromYaml }}
{{- if $credentials.secret }}
- name: TC_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $credentials.secret }}
      key: {{ $credentials.key }}
{{- end }}
{{- with .context.Values.redis.sentinel }}
{{- if and .hosts .existingSecret }}
- name: TC_REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .existingSecretPasswordKey }}
{{- end }}
{{- end }}
{{- if (index .context.Values .component).otelCollector.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: http://127.0.0.1:4317
- name: OTEL_SERVICE_NAME
  value: trainconductor-{{ .component }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .context.Values.tracing.sampleRatio | quote }}
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
