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
{{- if gt (int64 .Values.training.defaultMaxRetries) (int64 .Values.training.limits.maxRetries) }}
{{- fail (printf "training.defaultMaxRetries (%v) must be at most training.limits.maxRetries (%v)." .Values.training.defaultMaxRetries .Values.training.limits.maxRetries) }}
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
{{- $queues := .Values.queues }}
{{- if and (not $queues.enabled) (or $queues.defaultQueue $queues.defaultPriority $queues.groupDefaults) }}
{{- fail "queues.defaultQueue, queues.defaultPriority and queues.groupDefaults name Kueue's queues and priorities: they need queues.enabled=true (and Kueue in the cluster)." }}
{{- end }}
{{- $groups := list }}
{{- range $queues.groupDefaults }}
{{- if has .group $groups }}
{{- fail (printf "queues.groupDefaults lists group %s twice; an owner's group has one default queue." .group) }}
{{- end }}
{{- $groups = append $groups .group }}
{{- end }}
{{- if gt (mul 4 (int64 .Values.logs.maxLineBytes)) (int64 .Values.api.grpc.maxMessageBytes) }}
{{- fail (printf "logs.maxLineBytes (%v) must be at most a quarter of api.grpc.maxMessageBytes (%v): a log response carries a line at least." .Values.logs.maxLineBytes .Values.api.grpc.maxMessageBytes) }}
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
