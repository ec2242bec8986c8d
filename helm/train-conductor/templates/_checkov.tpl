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
