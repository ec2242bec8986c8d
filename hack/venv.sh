#!/usr/bin/env bash
# Makes (once) the virtualenv of the locked requirements, outside the
# checkout and keyed by the lock file, installs the project's own packages
# into it in editable mode, and prints its path.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${TC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/train-conductor}"
# The interpreter: PYTHON if set; else Debian's python3.11, the one the
# images run (hack/images.sh; the Dockerfile's python:3.11-slim is also built
# with profile-guided and link-time optimisation), so that the tests and
# `make bench` run on what production runs (a build from source without
# them, pyenv's default, runs pure Python slower). Falls back
# to python3 where Debian's cannot make a virtualenv even after
# hack/deps.sh installed python3.11-venv.
# The choice must not depend on whether `make deps` ran before: on a fresh
# machine `make up` and `make test` would otherwise key two virtualenvs.
python="${PYTHON:-}"
if [[ -z $python ]]; then
  python=python3
  if [[ -x /usr/bin/python3.11 ]]; then
    if ! /usr/bin/python3.11 -c 'import ensurepip, venv' 2>/dev/null; then
      "$root/hack/deps.sh" >&2 </dev/null
    fi
    if /usr/bin/python3.11 -c 'import ensurepip, venv' 2>/dev/null; then
      python=/usr/bin/python3.11
    fi
  fi
fi

# Keyed by the lock, the interpreter (its version and its path) and the
# checkout (the project's own packages are installed editable, pointing
# into one checkout).
digest="$( (cat "$root/requirements.lock"; "$python" -c 'import sys; print(sys.version, sys.executable)'; echo "$root") | sha256sum | cut -c1-12)"
venv="$cache/venv/$digest"

if [[ ! -f $venv/.complete ]]; then
  echo "[venv] creating $venv from requirements.lock" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    --no-deps -r "$root/requirements.lock" >&2
  touch "$venv/.complete"
fi

# The project's packages: editable, so the checkout is what runs. Reinstalled
# when a pyproject changes (pip is quick when nothing else changed).
stamp="$( (cat "$root"/proto/python/pyproject.toml "$root"/core/pyproject.toml \
  "$root"/services/*/pyproject.toml "$root"/client/pyproject.toml 2>/dev/null) | sha256sum | cut -c1-12)"
if [[ ! -f $venv/.project-$stamp ]]; then
  echo "[venv] installing the project's packages (editable)" >&2
  packages=()
  for p in proto/python core services/api services/controller client; do
    [[ -f $root/$p/pyproject.toml ]] && packages+=(-e "$root/$p")
  done
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation "${packages[@]}" >&2
  rm -f "$venv"/.project-* && touch "$venv/.project-$stamp"
fi
echo "$venv"
