#!/usr/bin/env bash
# Generates the Python code (with .pyi types) of every .proto under proto/
# into OUT (default proto/python). `--check` generates into a temporary
# directory and fails when the committed code differs.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
# The protoc plugins (mypy-protobuf) live next to the interpreter.
python_bin="$(dirname "$python")"
export PATH="$python_bin:$PATH"

generate() {
  local out=$1
  mapfile -t protos < <(cd "$root/proto" && find trainconductor train_conductor -name '*.proto' | sort)
  "$python" -m grpc_tools.protoc -I "$root/proto" \
    --python_out="$out" --grpc_python_out="$out" \
    --mypy_out="$out" --mypy_grpc_out="$out" \
    "${protos[@]/#/$root/proto/}"
  # Every directory is a package; py.typed tells mypy to use the .pyi files.
  find "$out/trainconductor" "$out/train_conductor" -type d -exec touch {}/__init__.py \;
  touch "$out/trainconductor/py.typed" "$out/train_conductor/py.typed"
}

if [[ ${1:-} == --check ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  for pkg in trainconductor train_conductor; do
    if ! diff -r -x __pycache__ -x '*.egg-info' "$tmp/$pkg" "$root/proto/python/$pkg"; then
      echo "generated code in proto/python is stale: run 'make proto'" >&2
      exit 1
    fi
  done
  echo "generated code is up to date"
else
  rm -rf "$root/proto/python/trainconductor" "$root/proto/python/train_conductor"
  generate "$root/proto/python"
fi
