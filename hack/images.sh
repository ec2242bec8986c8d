#!/usr/bin/env bash
# Builds the two images with podman, on a machine without a Docker engine
# (`make images` builds them with Docker and the default base image):
#
#   hack/images.sh [--tag TAG] [--build-arg NAME=VALUE]... [--refresh-base] [api] [controller]
#
#   - makes a Debian base image with debootstrap (minbase, python3,
#     python3-venv, ca-certificates) once, cached outside the checkout under
#     $TC_CACHE/images and keyed by what goes into it, and imports it into
#     podman's storage (--refresh-base makes it again, for Debian's updates);
#   - builds the Dockerfile's target <component> on it with `podman build
#     --isolation=chroot --network host` as train-conductor-<component>:TAG
#     (TAG: --tag, else $TAG, else dev), both components unless some are named;
#   - hands this machine's pip settings (index, CA bundle, timeout) to the
#     wheel download of the build: build arguments and a read-only mount,
#     nothing of them is kept in the images;
#   - labels every image it makes dev.trainconductor.project=train-conductor,
#     tags each build's builder stage (the target <component>-venv) as
#     train-conductor-<component>-builder:TAG (the layers the next build
#     reuses), and then removes this project's dangling images: those of
#     builds since superseded, and nobody else's.
#
# Needs root, podman, buildah and debootstrap (`make deps` installs them), and
# Debian's mirror the first time: the one of /etc/apt/sources.list*, or
# TC_DEBIAN_MIRROR. Each build's log goes to build/images/.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${TC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/train-conductor}/images"
logs="$root/build/images"
suite=bookworm
variant=minbase
packages=python3,python3-venv,ca-certificates
# Where the build's RUN steps see this machine's CA bundle for pip: over the
# base's own bundle, as a mount point that did not exist would be left behind
# in the image, empty.
pip_cert_in_build=/etc/ssl/certs/ca-certificates.crt
# On every image made here (the base, each stage of each build): what the
# pruning after a build picks this project's images by.
project_label=dev.trainconductor.project=train-conductor
scratch=""
base=""
pip_args=()

log() { printf '[images] %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit "${1:-0}"
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  [[ -n $scratch && -d $scratch ]] || return 0
  # debootstrap mounts /proc and /sys inside the root it makes: unmount what
  # a failed run left there, and never delete across a mount point.
  local mount
  awk -v under="$scratch/" 'index($2, under) == 1 { print $2 }' /proc/self/mounts |
    sort -r | while read -r mount; do umount -l "$mount" || true; done
  rm -rf --one-file-system "$scratch"
  scratch=""
}
trap cleanup EXIT

require() {
  local tool
  ((EUID == 0)) || die "needs root (debootstrap, and podman's storage of the root user)"
  for tool in podman buildah debootstrap tar awk sha256sum; do
    command -v "$tool" >/dev/null ||
      die "missing: $tool (make deps, or: apt-get install podman buildah debootstrap)"
  done
}

# The mirror of Debian this machine installs from: TC_DEBIAN_MIRROR, else
# the first `deb` source for the suite in /etc/apt/sources.list*, else Debian's.
debian_mirror() {
  local files=() mirror
  if [[ -n ${TC_DEBIAN_MIRROR:-} ]]; then
    echo "$TC_DEBIAN_MIRROR"
    return
  fi
  shopt -s nullglob
  files=(/etc/apt/sources.list.d/*.sources)
  if ((${#files[@]})); then
    # deb822 stanzas: Types, URIs, Suites, Enabled.
    mirror="$(awk -v suite="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled != "no" && uri != "")
          { print uri; found = 1; exit }
        types = suites = uri = enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^Types:/ { types = $0; sub(/^Types:[ \t]*/, "", types) }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { suites = $0; sub(/^Suites:[ \t]*/, "", suites) }
      /^Enabled:/ { enabled = tolower($2) }
      END { if (!found) flush() }
    ' "${files[@]}")"
  fi
  files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  if [[ -z ${mirror:-} ]] && ((${#files[@]})); then
    # One-line sources: deb [options] URI suite components...
    mirror="$(awk -v suite="$suite" '
      $1 == "deb" { sub(/^deb[ \t]+(\[[^]]*\][ \t]+)?/, ""); if ($2 == suite) { print $1; exit } }
    ' "${files[@]}" 2>/dev/null || true)"
  fi
  shopt -u nullglob
  echo "${mirror:-http://deb.debian.org/debian}"
}

# What a container never uses, removed from the root that debootstrap made:
# downloaded packages and lists, documentation but the licences, manual
# pages, translations, the install's logs, and this machine's name and
# resolver (the runtime provides its own).
trim_rootfs() {
  local rootfs=$1
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian "$rootfs"/tmp/* \
    "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf
  find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$rootfs/var/log" -type f -delete
}

# Makes (once, or again with an argument of 1) and imports the base image,
# named in $base.
make_base() {
  local refresh=$1 mirror arch key tarball
  mirror="$(debian_mirror)"
  arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
  key="$( (echo "$suite $variant $packages $arch $mirror"; declare -f trim_rootfs) |
    sha256sum | cut -c1-12)"
  tarball="$cache/base-$suite-$key.tar"
  base="localhost/train-conductor-base:$suite-$key"
  mkdir -p "$cache"
  if ((refresh)); then
    rm -f "$tarball"
    if podman image exists "$base"; then podman untag "$base" "$base"; fi
  fi
  if [[ ! -f $tarball ]]; then
    scratch="$(mktemp -d "$cache/.base-XXXXXX")"
    log "debootstrap --variant=$variant --include=$packages $suite from $mirror (once, a few minutes)"
    if ! debootstrap --variant="$variant" --include="$packages" --arch="$arch" \
      "$suite" "$scratch/rootfs" "$mirror" >"$scratch/debootstrap.log" 2>&1; then
      tail -n 30 "$scratch/debootstrap.log" >&2
      die "debootstrap failed (mirror $mirror; set TC_DEBIAN_MIRROR to use another)"
    fi
    trim_rootfs "$scratch/rootfs"
    tar -C "$scratch/rootfs" --numeric-owner --xattrs -cf "$scratch/base.tar" .
    mv "$scratch/base.tar" "$tarball"
    cleanup
    log "cached $tarball ($(du -h "$tarball" | cut -f1))"
  fi
  if ! podman image exists "$base"; then
    log "podman import $base"
    podman import --quiet \
      --change "LABEL $project_label" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' \
      "$tarball" "$base" >/dev/null
  fi
}

# pip's settings on this machine, for the wheel download of the build: from
# its configuration files and PIP_* of the environment (`pip config list`
# shows both, the ones that win last), as podman build options in $pip_args.
# Not find-links: the build takes the lock's wheels from the index, by hash.
pip_options() {
  local pip line name value cert="" index="" extra="" trusted="" timeout=""
  pip="$(command -v pip3 || command -v pip || true)"
  if [[ -n $pip ]]; then
    while IFS= read -r line; do
      [[ $line =~ ^(global|download|:env:)\.([a-z-]+)=\'(.*)\'$ ]] || continue
      name=${BASH_REMATCH[2]} value=${BASH_REMATCH[3]}
      case $name in
        cert) cert=$value ;;
        index-url) index=$value ;;
        extra-index-url) extra=$value ;;
        trusted-host) trusted=$value ;;
        timeout | default-timeout) timeout=$value ;;
      esac
    done < <("$pip" config list 2>/dev/null || true)
  fi
  cert=${PIP_CERT:-$cert} index=${PIP_INDEX_URL:-$index} extra=${PIP_EXTRA_INDEX_URL:-$extra}
  trusted=${PIP_TRUSTED_HOST:-$trusted} timeout=${PIP_DEFAULT_TIMEOUT:-$timeout}
  if [[ -n $cert ]]; then
    [[ -f $cert ]] || die "pip's CA bundle $cert (PIP_CERT or pip.conf) is not a file"
    pip_args+=(--volume "$cert:$pip_cert_in_build:ro" --build-arg "PIP_CERT=$pip_cert_in_build")
  fi
  [[ -z $index ]] || pip_args+=(--build-arg "PIP_INDEX_URL=$index")
  [[ -z $extra ]] || pip_args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra")
  [[ -z $trusted ]] || pip_args+=(--build-arg "PIP_TRUSTED_HOST=$trusted")
  [[ -z $timeout ]] || pip_args+=(--build-arg "PIP_DEFAULT_TIMEOUT=$timeout")
}

# Prints the steps of a build as they start; the whole output goes to its log.
progress() {
  awk '/STEP [0-9]+\/[0-9]+: / { printf "[images]   %s\n", substr($0, 1, 110); fflush() }' >&2
}

# logged LOG COMMAND...: COMMAND's whole output added to LOG, its steps shown.
logged() {
  local log_file=$1
  shift
  "$@" 2>&1 | tee -a "$log_file" | progress
}

build_image() {
  local component=$1 tag=$2 image log_file started
  shift 2
  image="train-conductor-$component:$tag"
  log_file="$logs/$component-$tag.log"
  started=$SECONDS
  local build=(podman build --isolation=chroot --network host --layers --label "$project_label"
    --build-arg "BASE_IMAGE=$base" "$@" --file "$root/Dockerfile")
  log "podman build --target $component -> $image (log: ${log_file#"$root/"})"
  : >"$log_file"
  # The builder stage (<component>-venv) first, alone and tagged: its last image is otherwise
  # untagged with nothing built on it, and pruning would take it and its
  # layers (the wheels' download, the virtualenv) for dangling. The tag keeps
  # them for the next build; the whole build then finds them cached.
  if ! logged "$log_file" "${build[@]}" --target "$component-venv" \
    --tag "train-conductor-$component-builder:$tag" "$root" ||
    ! logged "$log_file" "${build[@]}" --target "$component" --tag "$image" "$root"; then
    tail -n 40 "$log_file" | cut -c1-300 >&2
    die "podman build of $image failed; the whole log: $log_file"
  fi
  log "built $image in $((SECONDS - started))s"
}

# Removes this project's dangling images (by label): the images and layers of
# builds that newer ones replaced. Their tags moved on, so they are of no use,
# and without this they fill the disk. A failure is said, not fatal: the
# images were built.
prune_dangling() {
  local removed
  if removed="$(podman image prune --force --filter "label=$project_label" 2>&1)"; then
    log "removed $(grep -c . <<<"$removed" || true) dangling images of this project"
  else
    log "could not remove this project's dangling images: ${removed:0:300}"
  fi
}

main() {
  local tag=${TAG:-dev} components=() build_args=() refresh=0 component size
  while (($#)); do
    case $1 in
      --tag) tag=${2:?--tag needs a value}; shift 2 ;;
      --tag=*) tag=${1#--tag=}; shift ;;
      --build-arg) build_args+=(--build-arg "${2:?--build-arg needs NAME=VALUE}"); shift 2 ;;
      --build-arg=*) build_args+=(--build-arg "${1#--build-arg=}"); shift ;;
      --refresh-base) refresh=1; shift ;;
      api | controller) components+=("$1"); shift ;;
      -h | --help) usage 0 ;;
      *) log "unknown argument: $1"; usage 2 ;;
    esac
  done
  ((${#components[@]})) || components=(api controller)
  require
  mkdir -p "$logs"
  make_base "$refresh"
  pip_options
  for component in "${components[@]}"; do
    build_image "$component" "$tag" "${pip_args[@]}" "${build_args[@]}"
  done
  prune_dangling
  for component in "${components[@]}"; do
    size="$(podman image inspect --format '{{.Size}}' "train-conductor-$component:$tag")"
    log "train-conductor-$component:$tag: $((size / 1000000)) MB"
  done
}

main "$@"
