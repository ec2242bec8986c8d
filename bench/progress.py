"""Progress reports: ReportProgress from 200 trainings, against the real API
and a real Redis, beside the no-op server measured in the same run by the
same client (ghz, its requests going round the 200 trainings).

    python -m bench.progress [--seconds 8] [--rounds 5] [--trainings 200]

Two loads:
- peak: as many reports as 50 callers can make, API beside no-op (target:
  throughput >= 0.5x the no-op's, as CreateTraining's); the API's limit
  per training is lifted for it, or it would measure refusals.
- the fleet: each training reporting once a second (200 a second in all),
  with the chart's defaults (2 a second per training, an event every 5 s):
  p99 (target < 20 ms), no report refused, and the API's CPU time per
  report (its processes' user and system time over the reports it took).

The API runs under auth mode "none": a report names its training. With pod
tokens, a report also looks up its token's review and its pod in two
in-memory caches (a TokenReview and a pod read per token and per pod every
few minutes); that is not measured here. Writes build/bench/progress.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from bench.api import (
    CONCURRENCY,
    P99_TARGET_MS,
    Server,
    _hold_aof_rewrites,
    _paired,
    _start_api,
    _wait_grpc,
)
from bench.cpu import cpu_seconds
from bench.ghz import ROOT, run_ghz
from devstack.interrupts import sigterm_as_interrupt
from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec

METHOD = "trainconductor.v1.ProgressService/ReportProgress"
TARGET = 0.5


def reports(training_ids: list[str]) -> list[dict[str, object]]:
    """One request per training, as a Trainer callback sends them; ghz
    sends them in turn."""
    return [
        {
            "training_id": training_id,
            "progress": {
                "step": 1200,
                "total_steps": 5000,
                "epoch": 0.72,
                "loss": 1.3125,
                "learning_rate": 0.0002,
                "tokens_per_second": 5400.0,
                "metrics": {"grad_norm": 0.84},
            },
        }
        for training_id in training_ids
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="Length of each load run.")
    parser.add_argument("--rounds", type=int, default=5, help="Alternating runs compared.")
    parser.add_argument("--trainings", type=int, default=200, help="Trainings reporting.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-progress-"))
    redis_server = RedisServer(work / "redis")
    redis_server.start()
    unlimited, unlimited_target = _start_api(
        "unlimited", redis_server.url, work, TC_PROGRESS_RATE_PER_SECOND="1000000"
    )
    fleet, fleet_target = _start_api("fleet", redis_server.url, work)
    noop_port = free_port()
    noop = Service("noop", "bench.noop_server", {"TC_GRPC_PORT": str(noop_port)}, work).start()
    try:
        _wait_grpc(f"127.0.0.1:{noop_port}")
        status = _measure(
            Server.of(unlimited, unlimited_target),
            fleet_target,
            fleet,
            Server.of(noop, f"127.0.0.1:{noop_port}"),
            redis_server.url,
            args,
        )
    finally:
        for service in (unlimited, fleet):
            service.stop()
        noop.kill()
        redis_server.stop()
    shutil.rmtree(work, ignore_errors=True)
    return status


def _trainings(target: str, count: int) -> list[str]:
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        return [
            stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec())).training.id
            for _ in range(count)
        ]


def _measure(
    unlimited: Server,
    fleet_target: str,
    fleet: Service,
    noop: Server,
    redis_url: str,
    args: argparse.Namespace,
) -> int:
    # Each API has its own key prefix: its own trainings.
    data_unlimited = reports(_trainings(unlimited.target, args.trainings))
    data_fleet = reports(_trainings(fleet_target, args.trainings))
    _hold_aof_rewrites(redis_url)
    run_ghz(unlimited.target, METHOD, data_unlimited, seconds=2, concurrency=CONCURRENCY)
    paired = _paired(noop, unlimited, METHOD, data_unlimited, args.seconds, args.rounds, redis_url)
    ratio = paired.server.rps / paired.baseline.rps
    print(f"{'load':<20}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, load in (("no-op peak", paired.baseline), ("api peak", paired.server)):
        print(f"{name:<20}{load.rps:>9.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}{load.errors:>8}")
    peak_met = ratio >= TARGET and paired.server.errors == 0
    print(
        f"  ReportProgress: {ratio:.3f}x the no-op server, rounds {paired.ratios} "
        f"(target >= {TARGET}x): {'met' if peak_met else 'MISSED'}"
    )

    rate = args.trainings  # each training once a second
    seconds = max(args.seconds, 10.0)
    assert fleet.process is not None, "the fleet's API is not running"
    before = cpu_seconds(fleet.process.pid)
    load = run_ghz(
        fleet_target, METHOD, data_fleet, seconds=seconds, concurrency=CONCURRENCY, rps=rate
    )
    cpu = cpu_seconds(fleet.process.pid) - before
    per_report_ms = cpu / max(load.count, 1) * 1000
    fleet_met = load.p99_ms < P99_TARGET_MS and load.errors == 0
    print(
        f"{'api fleet':<20}{load.rps:>9.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}{load.errors:>8}"
    )
    print(
        f"  {args.trainings} trainings reporting each second: p99 {load.p99_ms:.1f} ms "
        f"(target < {P99_TARGET_MS:.0f} ms), {load.errors} refused or failed; the API spent "
        f"{per_report_ms:.2f} ms of CPU per report ({cpu / seconds:.0%} of a core): "
        f"{'met' if fleet_met else 'MISSED'}"
    )
    results = {
        "peak": {
            "noop": asdict(paired.baseline),
            "api": asdict(paired.server),
            "ratio": round(ratio, 3),
            "ratios_by_round": paired.ratios,
            "ratio_target": TARGET,
            "met": peak_met,
        },
        "fleet": {
            "trainings": args.trainings,
            "reports_per_second": rate,
            "load": asdict(load),
            "cpu_seconds": round(cpu, 3),
            "cpu_ms_per_report": round(per_report_ms, 3),
            "p99_target_ms": P99_TARGET_MS,
            "met": fleet_met,
        },
    }
    out = ROOT / "build" / "bench" / "progress.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"time": time.time(), "results": results}, indent=2))
    print(f"written to {out}")
    return 0 if peak_met and fleet_met else 1


if __name__ == "__main__":
    sigterm_as_interrupt()
    sys.exit(main())
