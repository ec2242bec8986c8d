{{/*
Names and labels. Every name is cut to 63 characters, the limit of a DNS
label and of a label value.
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

{{/* The ClusterRoleBinding of the API to system:auth-delegator: cluster-wide, so the namespace is in its name. */}}
{{- define "train-conductor.api.authDelegatorName" -}}
{{- printf "%s-%s-auth-delegator" (include "train-conductor.api.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ClusterRole and ClusterRoleBinding that let the controller read Kueue's priorities: cluster-wide, so the namespace is in their name. */}}
{{- define "train-conductor.controller.queuePrioritiesName" -}}
{{- printf "%s-%s-queue-priorities" (include "train-conductor.controller.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}
