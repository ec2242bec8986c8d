{{/*
The OpenTelemetry Collector sidecar, with *.otelCollector.enabled: its
container and its configuration.
*/}}

{{/* Port of the collector sidecar's health_check extension, which its probes ask. */}}
{{- define "train-conductor.otelCollector.healthPort" -}}
13133
{{- end }}

{{/*
The collector's configuration: the values' own, with the health_check
extension added, on every address of the pod (where the kubelet probes; the
NetworkPolicy admits no other pod to it). Takes (dict "context" $ "component" "api").
*/}}
{{- define "train-conductor.otelCollectorConfig" -}}
{{- $config := deepCopy (index .context.Values .component).otelCollector.config }}
{{- $extensions := default (dict) $config.extensions }}
{{- $_ := set $extensions "health_check" (dict "endpoint" (printf ":%s" (include "train-conductor.otelCollector.healthPort" .context))) }}
{{- $_ := set $config "extensions" $extensions }}
{{- $service := default (dict) $config.service }}
{{- $_ := set $service "extensions" (append (default (list) $service.extensions) "health_check" | uniq) }}
{{- $_ := set $config "service" $service }}
{{- toYaml $config }}
{{- end }}

{{/* The OpenTelemetry Collector sidecar. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.otelCollectorContainer" -}}
{{- $values := index .context.Values .component }}
- name: otel-collector
  image: {{ include "train-conductor.image" (dict "context" .context "image" $values.otelCollector.image) }}
  imagePullPolicy: {{ $values.otelCollector.image.pullPolicy }}
  args: ["--config=/etc/otelcol/config.yaml"]
  ports:
    - name: otel-health
      containerPort: {{ include "train-conductor.otelCollector.healthPort" .context }}
      protocol: TCP
  # The health_check extension (train-conductor.otelCollectorConfig): ready
  # once the pipelines run, restarted when the collector stops answering.
  readinessProbe:
    httpGet:
      path: /
      port: otel-health
    periodSeconds: 10
    timeoutSeconds: 2
  livenessProbe:
    httpGet:
      path: /
      port: otel-health
    periodSeconds: 20
    timeoutSeconds: 2
    failureThreshold: 3
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
