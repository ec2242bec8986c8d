{{/*
Redis: where each service finds it, the ACL user and password it connects
with, and the rules of the bundled Redis' users.
*/}}

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
