#!/usr/bin/env bash
# Makes (once) the virtualenv of a Python tool whose requirements conflict
# with the project's own (checkov, say), from its pinned and hashed lock
# hack/tools/python/NAME.lock, outside the checkout and keyed by that lock and
# the interpreter, and prints its path.
#
#   hack/tool-venv.sh checkov     # then "$(hack/tool-venv.sh checkov)/bin/checkov"
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${TC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/train-conductor}"
python="${PYTHON:-python3}"

if [[ $# -ne 1 || -z $1 ]]; then
  echo "usage: $0 NAME (a lock in hack/tools/python/NAME.lock)" >&2
  exit 2
fi
name=$1
lock="$root/hack/tools/python/$name.lock"
if [[ ! -f $lock ]]; then
  echo "[tool-venv] no lock for $name: ${lock#"$root/"} (uv pip compile --generate-hashes hack/tools/python/$name.in)" >&2
  exit 1
fi

# Keyed by the lock and the interpreter: nothing of the checkout is installed
# into it, so every checkout shares it.
digest="$( (cat "$lock"; "$python" --version) | sha256sum | cut -c1-12)"
venv="$cache/tool-venv/$name-$digest"

if [[ ! -f $venv/.complete ]]; then
  echo "[tool-venv] creating $venv from ${lock#"$root/"}" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    --no-deps -r "$lock" >&2
  touch "$venv/.complete"
fi
echo "$venv"
