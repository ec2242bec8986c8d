#!/usr/bin/env bash
# Installs the Debian packages the tests and `make up` run, when missing.
set -euo pipefail

wanted=(redis-server shellcheck)
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
# Debian starts its own redis-server service; ours run on ports of their own.
