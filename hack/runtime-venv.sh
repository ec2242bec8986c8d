#!/usr/bin/env bash
# Runs in the image build (the Dockerfile's *-venv stages), not on this
# machine: makes /opt/venv, the virtualenv a service's image ships, with
#
#   runtime-venv REQUIREMENT     e.g. 'trainconductor-api[token-review]'
#
#   - what REQUIREMENT resolves to among the wheels in /wheels (the locked
#     ones and the project's): its package, the project's packages it needs,
#     and their declared dependencies, extras included;
#   - each locked distribution of them installed by its hash in
#     requirements.lock (of the working directory), nothing else;
#   - then checked: `pip check`, and every module of the project's packages
#     imports.
#
# pip and python are the builder's (on PATH); the base's python3 runs the venv.
set -euo pipefail

requirement=${1:?usage: runtime-venv REQUIREMENT}
venv=/opt/venv
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# `name[]` (no extra asked for) is the name alone.
requirement=${requirement%\[\]}

python -m venv --without-pip "$venv"
if ! pip --python "$venv/bin/python" install --dry-run --ignore-installed --quiet --no-index \
  --find-links /wheels --report "$work/closure.json" "$requirement"; then
  echo "requirements.lock lacks a distribution $requirement needs on this base's" \
    "$(python -V): lock for it too (uv pip compile --python-version)" >&2
  exit 1
fi

# From the closure: the lock's entries to install by hash, and the project's
# own wheels (not in the lock). An extra the package does not provide fails
# here, where pip would only warn.
python - "$requirement" "$work" <<'EOF'
import json, re, sys
from pathlib import Path

requirement, work = sys.argv[1], Path(sys.argv[2])

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


name, _, extras = requirement.partition("[")
asked = {norm(e) for e in extras.rstrip("]").split(",") if e.strip()}
installs = json.loads((work / "closure.json").read_text())["install"]
by_name = {norm(i["metadata"]["name"]): i for i in installs}
provided = {norm(e) for e in by_name[norm(name)]["metadata"].get("provides_extra", [])}
if asked - provided:
    sys.exit(f"{name} provides no extra {sorted(asked - provided)}; it has {sorted(provided)}")

blocks = re.split(r"\n(?=\S)", Path("requirements.lock").read_text())
locked = {norm(m[1]): b for b in blocks if (m := re.match(r"([A-Za-z0-9._-]+)==", b))}
own = [i["download_info"]["url"].removeprefix("file://")
       for n, i in by_name.items() if n.startswith("trainconductor-")]
missing = sorted(n for n in by_name if n not in locked and not n.startswith("trainconductor-"))
if missing:
    sys.exit(f"resolved but not in requirements.lock: {missing}")
(work / "runtime.lock").write_text("\n".join(locked[n] for n in sorted(by_name) if n in locked) + "\n")
(work / "own.txt").write_text("\n".join(own) + "\n")
EOF

pip --python "$venv/bin/python" install --require-hashes --no-deps --no-index \
  --find-links /wheels -r "$work/runtime.lock"
mapfile -t own <"$work/own.txt"
pip --python "$venv/bin/python" install --no-deps --no-index "${own[@]}"
pip --python "$venv/bin/python" check
"$venv/bin/python" -I - <<'EOF'
import importlib, pkgutil

for top in [m for m in pkgutil.iter_modules() if m.name.startswith("trainconductor_")]:
    package = importlib.import_module(top.name)
    for module in pkgutil.walk_packages(package.__path__, f"{top.name}."):
        importlib.import_module(module.name)
EOF
