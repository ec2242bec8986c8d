#!/usr/bin/env bash
# End-to-end tests against a kind cluster (needs Docker and kind on PATH):
# create the cluster, build and load the images, install the chart, run
# tests/e2e with TC_KUBECONFIG pointing at it. KEEP_CLUSTER=1 keeps it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cluster="${KIND_CLUSTER:-train-conductor}"
kubeconfig="$root/.run/kind-kubeconfig"
tag="${IMAGE_TAG:-e2e}"

log() { printf '[kind-e2e] %s\n' "$*" >&2; }

require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { log "missing: $tool"; exit 1; }
  done
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local code=$?
  if ((code != 0)); then
    log "failed; cluster state follows"
    kubectl --kubeconfig "$kubeconfig" get all -A >&2 || true
    kubectl --kubeconfig "$kubeconfig" logs -l app.kubernetes.io/name=train-conductor \
      --all-containers --tail=50 -A >&2 || true
  fi
  if [[ -z ${KEEP_CLUSTER:-} ]]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  exit "$code"
}

create_cluster() {
  mkdir -p "$root/.run"
  kind create cluster --name "$cluster" --config "$root/kind/cluster.yaml" \
    --kubeconfig "$kubeconfig" --wait 120s
}

load_images() {
  local service
  for service in api controller; do
    docker build --target "$service" -t "train-conductor-$service:$tag" "$root"
    kind load docker-image --name "$cluster" "train-conductor-$service:$tag"
  done
}

install_chart() {
  helm --kubeconfig "$kubeconfig" upgrade --install train-conductor "$root/helm/train-conductor" \
    --namespace train-conductor --create-namespace \
    --set api.image.repository=train-conductor-api --set api.image.tag="$tag" \
    --set controller.image.repository=train-conductor-controller \
    --set controller.image.tag="$tag" \
    --set redis.enabled=true --set auth.allowInsecureNone=true --wait --timeout 5m
}

main() {
  require docker kind kubectl helm
  trap cleanup EXIT
  create_cluster
  load_images
  install_chart
  TC_KUBECONFIG="$kubeconfig" "$root/hack/venv.sh" >/dev/null
  # The images were built with Docker above; the podman image test is for
  # machines without it.
  TC_KUBECONFIG="$kubeconfig" "$("$root/hack/venv.sh")/bin/pytest" "$root/tests/e2e" \
    --ignore "$root/tests/e2e/test_images.py"
}

main "$@"
