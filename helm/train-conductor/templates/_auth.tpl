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
