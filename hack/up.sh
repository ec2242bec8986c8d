#!/usr/bin/env bash
# `make up`: Redis, a Kubernetes control plane, the API and the controller,
# in the foreground; Ctrl-C stops what this script started (the control
# plane too, unless it was running already).
#
# KUBECONFIG=/path/to/kubeconfig make up   uses that cluster (kind, say)
# instead of starting the local control plane.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:?set PYTHON to the virtualenv python}"
bin="$(dirname "$python")"
run="$root/.run/up"
api_port="${TC_GRPC_PORT:-50051}"
api_http_port="${TC_API_HTTP_PORT:-9464}"
controller_port="${TC_CONTROLLER_HTTP_PORT:-8080}"
redis_port="${TC_REDIS_PORT:-6379}"
pids=()
started_cluster=0

log() { printf '\033[1m[up]\033[0m %s\n' "$*" >&2; }

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  log "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((started_cluster)); then
    (cd "$root" && "$python" -m tests.cluster down >/dev/null 2>&1) || true
  fi
  if ((code != 0)); then
    for f in "$run"/*.log; do
      [[ -f $f ]] && { echo "--- $f"; tail -n 20 "$f"; } >&2
    done
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP  # a stop asked for is a clean end


port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local what=$1 url=$2
  for _ in $(seq 1 150); do
    curl -fsS "$url" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "$what did not start; see $run"
  return 1
}

# Each process runs in a session of its own (setsid): Ctrl-C reaches only this
# script, which stops them with SIGTERM. In the terminal's process group they
# would all stop at once on their own, and that looks like a crash.

start_redis() {
  port_free "$redis_port" || { log "port $redis_port is taken: set TC_REDIS_PORT"; exit 1; }
  mkdir -p "$run/redis"
  setsid redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$run/redis" \
    --appendonly yes --save "" >"$run/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  log "redis-server did not start"; exit 1
}

start_cluster() {
  if [[ -n ${KUBECONFIG:-} ]]; then
    log "using the cluster of KUBECONFIG=$KUBECONFIG"
    kubeconfig=$KUBECONFIG
    tolerations='[]'
  else
    if ! (cd "$root" && "$python" -m tests.cluster status >/dev/null); then
      started_cluster=1
    fi
    (cd "$root" && "$python" -m tests.cluster up >/dev/null)
    kubeconfig="$root/.run/kubeconfig"
    # The local cluster's nodes are kwok's, tainted so real pods stay away.
    tolerations='[{"key":"kwok.x-k8s.io/node","operator":"Exists","effect":"NoSchedule"}]'
  fi
}

start_services() {
  export TC_REDIS_URL="redis://127.0.0.1:$redis_port/0"
  # A short drain: nothing balances over this one local API.
  TC_GRPC_PORT=$api_port TC_HTTP_PORT=$api_http_port TC_DRAIN_SECONDS=1 \
    setsid "$bin/trainconductor-api" >"$run/api.log" 2>&1 &
  pids+=($!)
  TC_KUBECONFIG=$kubeconfig TC_HTTP_PORT=$controller_port TC_IMAGE="${TC_IMAGE:-example.com/fms-hf-tuning:latest}" \
    TC_TOLERATIONS=$tolerations TC_LEASE_DURATION_SECONDS=4 TC_RENEW_DEADLINE_SECONDS=3 \
    TC_RETRY_PERIOD_SECONDS=1 setsid "$bin/trainconductor-controller" >"$run/controller.log" 2>&1 &
  pids+=($!)
  wait_for "the API" "http://127.0.0.1:$api_http_port/metrics"
  wait_for "the controller" "http://127.0.0.1:$controller_port/readyz"
}

banner() {
  cat <<BANNER

  Train Conductor is up.

    API (gRPC)           127.0.0.1:$api_port   (v1, legacy, health, reflection)
    API metrics          http://127.0.0.1:$api_http_port/metrics
    controller           http://127.0.0.1:$controller_port/metrics  /healthz  /readyz
    Redis                redis://127.0.0.1:$redis_port/0
    Kubernetes           KUBECONFIG=$kubeconfig
    logs                 $run/*.log

  Submit a training and follow it to the end (in another terminal):

    $bin/tcctl create -f $root/examples/lora.yaml --wait
    $bin/tcctl list

  Ctrl-C stops everything.

BANNER
}

main() {
  mkdir -p "$run"
  start_redis
  start_cluster
  start_services
  banner
  # Stay in the foreground until Ctrl-C or until a service dies.
  wait -n "${pids[@]}"
  log "a service exited; see $run"
  exit 1
}

main "$@"
