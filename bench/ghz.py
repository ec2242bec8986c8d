"""Runs ghz (built by hack/tools/install.sh) and reads its JSON report."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack.cluster import binary

ROOT = Path(__file__).resolve().parents[1]


# The services' protos: v1 and the legacy contract, served on one port.
PROTOS = (
    "trainconductor/v1/training_service.proto",
    "trainconductor/v1/progress_service.proto",
    "train_conductor/service/training/training.proto",
)
V1_SERVICE = "trainconductor.v1.TrainingService"
LEGACY_SERVICE = "train_conductor.service.training.TrainConductor"
# The legacy methods whose names v1 does not have (its CancelTraining does).
_LEGACY_METHODS = {"Train", "GetTrainingStatus"}


@functools.cache
def protoset() -> Path:
    """The API's descriptors, compiled once a run (the protos change): this
    ghz's own .proto parser predates proto3 `optional`."""
    out = ROOT / "build" / "bench" / "training_service.protoset"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc",
            "-I", str(ROOT / "proto"),
            "--include_imports",
            f"--descriptor_set_out={out}",
            *PROTOS,
        ],
        check=True,
    )  # fmt: skip
    return out


CallData = dict[str, object] | list[dict[str, object]]

_CUT_OFF = ("transport is closing", "the client connection is closing")


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    count: int
    errors: int  # calls that failed, not counting those cut off when the run ended
    error_messages: dict[str, int]  # what those calls failed with


def run_ghz(
    target: str,
    method: str,
    data: CallData,
    *,
    seconds: float,
    concurrency: int,
    rps: int = 0,
    connections: int = 4,
) -> Load:
    """`method` is a v1 method's name, a legacy one's that v1 does not
    have (Train, GetTrainingStatus), or `package.Service/Method`. `data`: a
    request, or a list that ghz sends in turn, one per call."""
    command = [
        binary("ghz"),
        "--insecure",
        "--protoset", str(protoset()),
        "--call", _qualified(method),
        "--data", json.dumps(data),
        "--concurrency", str(concurrency),
        "--connections", str(connections),
        "--duration", f"{seconds}s",
        "--format", "json",
        target,
    ]  # fmt: skip
    if rps:
        command[1:1] = ["--rps", str(rps)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if not result.stdout.strip():
        raise RuntimeError(f"ghz failed: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    percentiles = {d["percentage"]: d["latency"] / 1e6 for d in report["latencyDistribution"] or []}
    # Calls still in flight when the run ends are cut off by ghz closing its
    # connections ("transport is closing", "the client connection is
    # closing"): an artefact of stopping, not a failure of the server.
    failures = {
        message: n
        for message, n in (report.get("errorDistribution") or {}).items()
        if not any(cut_off in message for cut_off in _CUT_OFF)
    }
    return Load(
        rps=float(report["rps"]),
        p50_ms=percentiles.get(50, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
        count=int(report["count"]),
        errors=sum(failures.values()),
        error_messages=failures,
    )


def _qualified(method: str) -> str:
    if "/" in method:
        return method
    return f"{LEGACY_SERVICE if method in _LEGACY_METHODS else V1_SERVICE}/{method}"
