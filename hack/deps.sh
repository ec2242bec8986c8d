#!/usr/bin/env bash
# Installs the Debian packages the tests and `make up` run, when missing:
# Redis, shellcheck, Prometheus (and promtool) for the metrics tests, curl,
# podman, buildah and debootstrap for the images (hack/images.sh), and
# python3.11-venv, so that the project's virtualenv runs on Debian's Python
# (hack/venv.sh says why).
set -euo pipefail

wanted=(redis-server shellcheck prometheus curl podman buildah debootstrap)
if [[ -x /usr/bin/python3.11 ]]; then # bookworm's; elsewhere hack/venv.sh uses python3
  wanted+=(python3.11-venv)
fi
missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "[deps] installing ${missing[*]} from Debian" >&2
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# Debian may start its own redis-server and prometheus services; the tests
# run their own, on ports of their own.
