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

{{/*
The Secret and key of the password of the bundled Redis' `default` user, or
of your Redis' password shared by both services; empty when there is none.
*/}}
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

{{/* "true" when the bundled Redis requires passwords, and so has an ACL user per service. */}}
{{- define "train-conductor.redis.acl" -}}
{{- if and .Values.redis.enabled (include "train-conductor.redis.passwordSecret" .) }}true{{ end }}
{{- end }}

{{/* The ACL user of the bundled Redis that a component connects as: tc-api, tc-controller, tc-exporter. */}}
{{- define "train-conductor.redis.aclUser" -}}
{{- printf "tc-%s" . }}
{{- end }}

{{/*
What each ACL user of the bundled Redis may do (docs/security.md): the
commands it calls, inside its Lua scripts too, and only the keys under the
prefix. The exporter reads server statistics and no key. Takes the root context.
*/}}
{{- define "train-conductor.redis.aclRules" -}}
{{- $keys := printf "~%s*" (regexReplaceAll "([*?\\[\\]\\\\])" .Values.redis.keyPrefix "\\${1}") }}
api: {{ printf "on resetkeys %s resetchannels -@all +ping +evalsha +script|load +hgetall +zrange +xread +xrevrange +xinfo|stream +get +set +zintercard +hset +zadd +xadd +exists +hmget +hincrby" $keys | quote }}
controller: {{ printf "on resetkeys %s resetchannels -@all +ping +evalsha +script|load +hgetall +zrange +zcard +xgroup|create +xreadgroup +xautoclaim +xack +xinfo|groups +exists +hmget +hset +zrem +zadd +xadd +xinfo|stream +xrevrange +xsetid +dump +restore +hdel +del +set" $keys | quote }}
exporter: "on resetkeys resetchannels -@all +ping +info +config|get +client|setname +latency|latest +latency|histogram +slowlog|len +slowlog|get"
{{- end }}

{{/*
The ACL user and the Secret and key of the password a service connects to
Redis with; each empty when there is none. Takes (dict "context" $ "component" "api").
*/}}
{{- define "train-conductor.redis.credentials" -}}
{{- $redis := .context.Values.redis }}
{{- $out := dict "username" "" "secret" "" "key" "" }}
{{- if $redis.enabled }}
{{- if include "train-conductor.redis.acl" .context }}
{{- $_ := set $out "username" (include "train-conductor.redis.aclUser" .component) }}
{{- $_ := set $out "secret" (include "train-conductor.redis.fullname" .context) }}
{{- $_ := set $out "key" (printf "%s-password" .component) }}
{{- end }}
{{- else }}
{{- $user := index $redis.users .component }}
{{- $_ := set $out "username" (default $redis.username $user.username) }}
{{- if $user.existingSecret }}
{{- $_ := set $out "secret" $user.existingSecret }}
{{- $_ := set $out "key" $user.existingSecretPasswordKey }}
{{- else if $redis.existingSecret }}
{{- $_ := set $out "secret" $redis.existingSecret }}
{{- $_ := set $out "key" $redis.existingSecretPasswordKey }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{- define "train-conductor.redis.caDir" -}}
/etc/train-conductor/redis-ca
{{- end }}

{{/* The Redis settings of a service, as a dict of settings names. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.redisSettings" -}}
{{- $redis := .context.Values.redis }}
{{- $url := $redis.url }}
{{- if $redis.enabled }}
{{- $url = printf "redis://%s.%s.svc:6379/0" (include "train-conductor.redis.fullname" .context) .context.Release.Namespace }}
{{- end }}
{{- $settings := dict
  "redis_url" $url
  "redis_key_prefix" $redis.keyPrefix
  "redis_socket_timeout_seconds" (float64 $redis.client.socketTimeoutSeconds)
  "redis_connect_timeout_seconds" (float64 $redis.client.connectTimeoutSeconds)
  "redis_retries" (int64 $redis.client.retries)
  "redis_max_connections" (int64 $redis.client.maxConnections)
}}
{{- with (include "train-conductor.redis.credentials" . | fromYaml).username }}
{{- $_ := set $settings "redis_username" . }}
{{- end }}
{{- with $redis.sentinel.hosts }}
{{- $_ := set $settings "redis_sentinels" . }}
{{- $_ := set $settings "redis_sentinel_master" $redis.sentinel.masterName }}
{{- end }}
{{- if $redis.tls.caSecret }}
{{- $_ := set $settings "redis_ca_file" (printf "%s/%s" (include "train-conductor.redis.caDir" .context) $redis.tls.caKey) }}
{{- end }}
{{- toYaml $settings }}
{{- end }}

{{/* "true" when a service container takes a Redis password (the master's, the Sentinels') from a Secret. Takes (dict "context" $ "component" "api"). */}}
{{- define "train-conductor.redis.passwordsFromSecrets" -}}
{{- $sentinel := .context.Values.redis.sentinel }}
{{- if or (include "train-conductor.redis.credentials" . | fromYaml).secret (and $sentinel.hosts $sentinel.existingSecret) }}true{{ end }}
{{- end }}

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

{{/*
The checks of checkov (hack/lint-chart.sh) that do not apply to a workload,
as its checkov.io/skipN annotations, each with its reason (which holds no
"="): those of every workload, then the workload's own. Takes the list of the
workload's own, "CKV_K8S_xx=reason".
*/}}
{{- define "train-conductor.checkovSkips" -}}
{{- $every := list
  "CKV_K8S_43=images are pinned by the tag in the values; a tag written TAG@sha256:DIGEST pins the digest too"
  "CKV_K8S_15=the pull policy is the operator's value (image.pullPolicy); the AlwaysPullImages admission plugin enforces pulls cluster-wide"
  "CKV_K8S_11=no CPU limit by default: CFS throttling would stall replies and Lease renewals; CPU requests are set and resources.limits.cpu caps it where wanted"
}}
{{- range $i, $skip := concat $every . }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end }}

{{/* The API's auth modes, as a JSON list: auth.modes, or the deprecated auth.mode alone. */}}
{{- define "train-conductor.authModes" -}}
{{- if .Values.auth.mode }}
{{- list .Values.auth.mode | toJson }}
{{- else }}
{{- .Values.auth.modes | toJson }}
{{- end }}
{{- end }}

{{/* "true" when the API checks ServiceAccount tokens with the TokenReview API. */}}
{{- define "train-conductor.tokenReview" -}}
{{- if has "token-review" (include "train-conductor.authModes" . | fromJsonArray) }}true{{ end }}
{{- end }}

{{/* "true" when the API reads static tokens from auth.staticTokens.existingSecret. */}}
{{- define "train-conductor.staticTokens" -}}
{{- if has "static-token" (include "train-conductor.authModes" . | fromJsonArray) }}true{{ end }}
{{- end }}

{{/* Where the API's TLS Secret and static tokens are mounted. */}}
{{- define "train-conductor.api.tlsDir" -}}
/etc/train-conductor/tls
{{- end }}

{{- define "train-conductor.api.staticTokensDir" -}}
/etc/train-conductor/static-tokens
{{- end }}

{{/* The ClusterRoleBinding of the API to system:auth-delegator: cluster-wide, so the namespace is in its name. */}}
{{- define "train-conductor.api.authDelegatorName" -}}
{{- printf "%s-%s-auth-delegator" (include "train-conductor.api.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Refuses values that the schema cannot judge alone. Included by the API's
Deployment, which every install renders.
*/}}
{{- define "train-conductor.validate" -}}
{{- $modes := include "train-conductor.authModes" . | fromJsonArray }}
{{- $tls := .Values.api.tls }}
{{- if has "none" $modes }}
{{- if gt (len $modes) 1 }}
{{- fail (printf "auth.modes %s: none can not be combined with other modes (a caller without credentials would be trusted under any name)." (toJson $modes)) }}
{{- end }}
{{- if not .Values.auth.allowInsecureNone }}
{{- fail "auth.modes=[none] lets any caller act as any user (the API trusts the x-tc-user metadata). Set auth.allowInsecureNone=true to accept that, for development or a network where every caller is trusted, or choose another mode (token-review, the default)." }}
{{- end }}
{{- end }}
{{- if and (has "static-token" $modes) (not .Values.auth.staticTokens.existingSecret) }}
{{- fail "auth.modes static-token needs auth.staticTokens.existingSecret, the Secret with the token list." }}
{{- end }}
{{- if and (has "mtls" $modes) (not (and $tls.enabled $tls.clientCA)) }}
{{- fail "auth.modes mtls needs api.tls.enabled=true and api.tls.clientCA=true (the CA that signs the client certificates)." }}
{{- end }}
{{- if and $tls.enabled (not $tls.secretName) }}
{{- fail "api.tls.enabled needs api.tls.secretName, a kubernetes.io/tls Secret (tls.crt, tls.key; ca.crt for api.tls.clientCA)." }}
{{- end }}
{{- if and $tls.clientCA (not $tls.enabled) }}
{{- fail "api.tls.clientCA (mTLS) needs api.tls.enabled=true." }}
{{- end }}
{{- if le (float64 .Values.api.terminationGracePeriodSeconds) (addf .Values.api.preStopSleepSeconds .Values.api.drainSeconds) }}
{{- fail (printf "api.terminationGracePeriodSeconds (%v) must exceed api.preStopSleepSeconds (%v) plus api.drainSeconds (%v), or Kubernetes kills the API while it drains." .Values.api.terminationGracePeriodSeconds .Values.api.preStopSleepSeconds .Values.api.drainSeconds) }}
{{- end }}
{{- if and .Values.redis.enabled .Values.redis.sentinel.hosts }}
{{- fail "redis.sentinel.hosts points at your own Sentinels; the bundled Redis (redis.enabled) is a single instance without Sentinel. Set one or the other." }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.redis.url) }}
{{- fail "Set redis.url to your Redis, or redis.enabled=true to run one in the release." }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- range $component, $user := .Values.redis.users }}
{{- if or $user.username $user.existingSecret }}
{{- fail (printf "redis.users.%s is for your own Redis; the bundled Redis (redis.enabled) makes an ACL user for each service itself." $component) }}
{{- end }}
{{- end }}
{{- if and (include "train-conductor.redis.acl" .) (regexMatch "\\s" .Values.redis.keyPrefix) }}
{{- fail (printf "redis.keyPrefix %q holds a space, which the bundled Redis' ACL key pattern can not." .Values.redis.keyPrefix) }}
{{- end }}
{{- if and .Values.redis.existingSecret (eq .Values.redis.existingSecret (include "train-conductor.redis.fullname" .)) }}
{{- fail (printf "redis.existingSecret %s is the name of the Secret the chart makes for the bundled Redis' users; name yours otherwise." .Values.redis.existingSecret) }}
{{- end }}
{{- end }}
{{- if ge (int .Values.controller.leaderElection.renewDeadlineSeconds) (int .Values.controller.leaderElection.leaseDurationSeconds) }}
{{- fail "controller.leaderElection.renewDeadlineSeconds must be below leaseDurationSeconds." }}
{{- end }}
{{- range $component := list "api" "controller" }}
{{- $values := index $.Values $component }}
{{- $pdb := $values.pdb }}
{{- if and $pdb.enabled (gt (int $values.replicas) 1) (not (kindIs "string" $pdb.minAvailable)) (ge (int $pdb.minAvailable) (int $values.replicas)) }}
{{- fail (printf "%s.pdb.minAvailable (%v) must be below %s.replicas (%v), or no pod of it can ever be evicted and node drains hang." $component $pdb.minAvailable $component $values.replicas) }}
{{- end }}
{{- $bound := or (eq $component "controller") (has "token-review" $modes) }}
{{- if and $bound (not $values.serviceAccount.create) (not $values.serviceAccount.name) }}
{{- fail (printf "%s.serviceAccount.create=false needs %s.serviceAccount.name, the ServiceAccount to run as; the chart would otherwise bind its rights to the namespace's default ServiceAccount, which every pod there (trainings included) runs as." $component $component) }}
{{- end }}
{{- end }}
{{- /* The longest name the chart makes is <fullname>-controller-leader-election (27 more characters); past 63, names are cut and two objects would share one. */}}
{{- $fullname := include "train-conductor.fullname" . }}
{{- if gt (len $fullname) 36 }}
{{- fail (printf "The release's full name %q is %d characters; the chart needs at most 36 to keep the names it derives from it (up to 63 characters) apart. Choose a shorter release name or set fullnameOverride." $fullname (len $fullname)) }}
{{- end }}
{{- if regexMatch "://[^/@]*:[^/@]+@" (toString .Values.redis.url) }}
{{- fail "redis.url carries a password, which would land in a ConfigMap; give it through redis.users.<api|controller>.existingSecret or redis.existingSecret instead." }}
{{- end }}
{{- if and .Values.prometheusRule.enabled (not (and .Values.api.serviceMonitor.enabled .Values.controller.serviceMonitor.enabled)) }}
{{- fail "prometheusRule.enabled needs api.serviceMonitor.enabled and controller.serviceMonitor.enabled: the alerts select the job names those ServiceMonitors give, and without them would page that the services are down." }}
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
