#!/usr/bin/env bash
# Builds the Go programs the local control plane and the chart tests need,
# once, into a cache outside the checkout keyed by version and by the hash of
# the pinned module files, and links them into "$TC_CACHE/bin".
#
#   hack/tools/install.sh            build whatever is missing or stale
#   hack/tools/install.sh etcd kwok  only those
#   hack/tools/install.sh --print    print the bin directory and exit
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${TC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/train-conductor}"
bin="$cache/bin"
export GOFLAGS="-buildvcs=false -trimpath"

log() { printf '[tools] %s\n' "$*" >&2; }

# key NAME VERSION [FILES...]: a cache directory that changes with the inputs.
key() {
  local name=$1 version=$2
  shift 2
  local digest
  # With no files, `cat` would read standard input: a terminal waits for ever.
  digest="$( (echo "$version"; if (($#)); then cat "$@" 2>/dev/null; fi) </dev/null | sha256sum | cut -c1-12)"
  echo "$cache/tools/$name-$version-$digest"
}

# link DIR BINARIES...: point "$bin/<binary>" at DIR/<binary>.
link() {
  local dir=$1
  shift
  mkdir -p "$bin"
  for b in "$@"; do ln -sfn "$dir/$b" "$bin/$b"; done
}

# build NAME DIR BINARIES... -- COMMAND...: run COMMAND with $out set, unless
# every binary is already in DIR. Builds into a temporary directory that is
# renamed at the end, so an interrupted build never looks complete.
build() {
  local name=$1 dir=$2
  shift 2
  local binaries=()
  while [[ $1 != -- ]]; do binaries+=("$1"); shift; done
  shift
  local missing=0
  for b in "${binaries[@]}"; do [[ -x $dir/$b ]] || missing=1; done
  if ((missing)); then
    log "building $name into $dir (the first build takes many minutes)"
    local start=$SECONDS
    out="$dir.partial.$$"
    rm -rf "$out" && mkdir -p "$out"
    if ! "$@"; then
      rm -rf "$out"
      log "building $name failed (above): check that the Go module proxy ($(go env GOPROXY)) is reachable and the disk has room, then run 'make tools' again"
      return 1
    fi
    rm -rf "$dir" && mv "$out" "$dir"
    log "built $name in $((SECONDS - start))s"
  fi
  link "$dir" "${binaries[@]}"
}

build_ghz() {
  GOBIN="$out" go install -ldflags "-s -w" "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
}

build_grpcurl() {
  GOBIN="$out" go install -ldflags "-s -w" "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
}

build_jaeger() {
  (cd "$here/jaeger" && go build -ldflags "-s -w" -o "$out/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
}

build_kubernetes() {
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  (cd "$here/kubernetes" && go build -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl)
}

build_etcd() {
  (cd "$here/etcd" && go build -ldflags "-s -w" -o "$out/etcd" .)
}

build_kwok() {
  GOBIN="$out" go install -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_helm() {
  GOBIN="$out" go install -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# Kueue's manager, and beside it the manifests the harness installs (the CRDs
# with their conversion patches, the webhook configurations, the visibility
# APIServices), copied out of the module cache so that nothing at run time
# depends on where GOMODCACHE is or how it is laid out.
build_kueue() {
  local pkg=sigs.k8s.io/kueue/pkg/version
  GOBIN="$out" go install -ldflags "-s -w -X $pkg.GitVersion=$KUEUE_VERSION" \
    "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
  local components
  components="$(go env GOMODCACHE)/sigs.k8s.io/kueue@$KUEUE_VERSION/config/components"
  mkdir -p "$out/kueue-manifests"
  cp -R "$components/crd" "$components/webhook" "$components/visibility" "$out/kueue-manifests/"
  chmod -R u+w "$out/kueue-manifests"  # the module cache is read-only
}

build_helm_docs() {
  GOBIN="$out" go install -ldflags "-s -w" "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
}

# build_tool NAME: build one tool (and link it) unless it is cached.
build_tool() {
  case $1 in
    etcd) build etcd "$(key etcd "$ETCD_VERSION" "$here/etcd/go.sum" "$here/etcd/main.go")" \
      etcd -- build_etcd ;;
    kwok) build kwok "$(key kwok "$KWOK_VERSION")" kwok kwokctl -- build_kwok ;;
    helm) build helm "$(key helm "$HELM_VERSION")" helm -- build_helm ;;
    helm-docs) build helm-docs "$(key helm-docs "$HELM_DOCS_VERSION")" helm-docs -- build_helm_docs ;;
    ghz) build ghz "$(key ghz "$GHZ_VERSION")" ghz -- build_ghz ;;
    # kueue-manifests is a directory: listed so that a cache without it builds again.
    kueue) build kueue "$(key kueue "$KUEUE_VERSION")" kueue kueue-manifests -- build_kueue ;;
    grpcurl) build grpcurl "$(key grpcurl "$GRPCURL_VERSION")" grpcurl -- build_grpcurl ;;
    jaeger) build jaeger "$(key jaeger "$JAEGER_VERSION" "$here/jaeger/go.sum")" jaeger -- build_jaeger ;;
    kubernetes) build kubernetes "$(key kubernetes "$KUBERNETES_VERSION" "$here/kubernetes/go.sum")" \
      kube-apiserver kube-controller-manager kube-scheduler kubectl -- build_kubernetes ;;
    *) log "unknown tool $1 (known: ${all_tools[*]})"; return 2 ;;
  esac
}

all_tools=(etcd kwok helm helm-docs ghz grpcurl jaeger kubernetes kueue)

main() {
  if [[ ${1:-} == --print ]]; then echo "$bin"; return; fi
  if ! command -v go >/dev/null; then
    log "go is missing: install Go ($(grep -m1 '^go ' "$here/kubernetes/go.mod")) and put it on PATH"
    return 1
  fi
  local tools=("$@")
  ((${#tools[@]})) || tools=("${all_tools[@]}")
  # In parallel: module downloads and links (one core each) overlap the
  # compiles of the others. Go's build cache is safe to share.
  local pids=() failed=0
  for tool in "${tools[@]}"; do
    build_tool "$tool" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if ((failed)); then
    log "some tools did not build (see above)"
    return 1
  fi
  log "tools ready in $bin"
}

main "$@"
