{{/*
How the API identifies callers (auth.*), and where it finds its TLS
certificates and static tokens.
*/}}

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

{{/* "true" when training pods report progress with their own tokens: the
API reviews them (TokenReview) and reads their pods. Not under auth mode
"none", where a report names its training. */}}
{{- define "train-conductor.progressReports" -}}
{{- if and .Values.progress.enabled (not (has "none" (include "train-conductor.authModes" . | fromJsonArray))) }}true{{ end }}
{{- end }}

{{/* "true" when the API creates TokenReviews: users' tokens, or training pods'. */}}
{{- define "train-conductor.api.reviewsTokens" -}}
{{- if or (include "train-conductor.tokenReview" .) (include "train-conductor.progressReports" .) }}true{{ end }}
{{- end }}

{{/* "true" when the API reads trainings' logs from their pods (logs.fromPods). */}}
{{- define "train-conductor.api.readsPodLogs" -}}
{{- if .Values.logs.fromPods }}true{{ end }}
{{- end }}

{{/* "true" when the API calls the apiserver: TokenReview (users' tokens,
or training pods'), reading the reporting pods, and reading trainings'
pods and their logs. */}}
{{- define "train-conductor.api.usesKubernetes" -}}
{{- if or (include "train-conductor.api.reviewsTokens" .) (include "train-conductor.api.readsPodLogs" .) }}true{{ end }}
{{- end }}

{{/* The API's address as training pods reach it. */}}
{{- define "train-conductor.progressAddress" -}}
{{- .Values.progress.address | default (printf "%s.%s.svc:%d" (include "train-conductor.api.fullname" .) .Release.Namespace (int (.Values.progress.port | default .Values.api.grpc.port))) }}
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
