"""API benchmark: CreateTraining, GetTraining and the legacy contract's Train
against the real server and a real Redis, each beside a no-op grpc.aio
server measured in the same run by the same client (ghz).

    python -m bench.api [--seconds 8] [--rounds 5] [--tracing-only]

Each comparison alternates the two servers for a few rounds and keeps the
median ratio: this machine's speed drifts by a tenth from run to run.

Targets: Create and legacy Train throughput >= 0.5x the no-op, Get >= 0.6x,
and p99 under 20 ms at half of the measured peak rate (the median of three
runs); tracing on, as the chart configures it (exporting to a real Jaeger,
recording the chart's default share of traces), costs at most 15% of Create
throughput. The cost of recording every call is measured and printed too,
and so is each server's CPU a call (from /proc), steadier from run to run
than calls a second. Writes build/bench/api.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import redis
import yaml
from google.protobuf import json_format
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from bench.cpu import cpu_seconds
from bench.ghz import ROOT, CallData, Load, run_ghz
from devstack.interrupts import sigterm_as_interrupt
from devstack.jaeger import Jaeger
from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec

CONCURRENCY = 50
# Train, a create through the legacy contract, is judged as CreateTraining.
TARGETS = {"CreateTraining": 0.5, "GetTraining": 0.6, "Train": 0.5}
P99_TARGET_MS = 20.0
HALF_PEAK_RUNS = 3
TRACING_COST_TARGET = 0.15


def _wait_grpc(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)


def _start_api(name: str, redis_url: str, work: Path, **env: str) -> tuple[Service, str]:
    port, http_port = free_port(), free_port()
    api = Service(
        name,
        "trainconductor_api.main",
        {
            "TC_REDIS_URL": redis_url,
            "TC_REDIS_KEY_PREFIX": f"{name}:",
            "TC_GRPC_HOST": "127.0.0.1",
            "TC_GRPC_PORT": str(port),
            "TC_HTTP_PORT": str(http_port),
            **env,
        },
        work,
    ).start()
    api.wait_http_ok(f"http://127.0.0.1:{http_port}/metrics")
    return api, f"127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="Length of each load run.")
    parser.add_argument(
        "--rounds", type=int, default=5, help="Alternating runs of each pair compared."
    )
    parser.add_argument(
        "--tracing-only",
        action="store_true",
        help="Measure only what tracing costs (tracing on beside off), not the no-op ratios.",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis_server = RedisServer(work / "redis")
    redis_server.start()
    jaeger = Jaeger(work / "jaeger")
    api, api_target = _start_api("api", redis_server.url, work)
    traced = {
        ratio: _start_api(
            f"traced-{ratio}",
            redis_server.url,
            work,
            OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_TRACES_SAMPLER="parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG=str(ratio),
        )
        for ratio in (chart_sample_ratio(), 1.0)
    }
    noop_port = free_port()
    noop = Service("noop", "bench.noop_server", {"TC_GRPC_PORT": str(noop_port)}, work).start()
    try:
        _wait_grpc(f"127.0.0.1:{noop_port}")
        targets = {ratio: Server.of(service, target) for ratio, (service, target) in traced.items()}
        status = _measure(
            Server.of(api, api_target),
            Server.of(noop, f"127.0.0.1:{noop_port}"),
            targets,
            args.seconds,
            args.rounds,
            redis_server.url,
            tracing_only=args.tracing_only,
        )
    finally:
        for service in (api, *(service for service, _ in traced.values())):
            service.stop()
        noop.kill()
        jaeger.stop()
        redis_server.stop()
    # Its Redis data and access logs run to hundreds of MB. A run that raised
    # keeps them, to be read.
    shutil.rmtree(work, ignore_errors=True)
    return status


def legacy_train_request() -> legacy.TrainingRequest:
    """`lora_spec` as a client of the legacy contract's latest revision sends
    it: flat LoRA arguments and num_gpus, which the API translates."""
    spec = lora_spec()
    p, lora = spec.parameters, spec.parameters.lora
    return legacy.TrainingRequest(
        model_name=spec.model_name,
        output_path=spec.output_path,
        parameters=legacy.TrainingParameters(
            model_name_or_path=p.base_model,
            data_path=p.data_path,
            num_train_epochs=p.num_train_epochs,
            per_device_train_batch_size=p.per_device_train_batch_size,
            learning_rate=p.learning_rate,
            peft_method="lora",
            r=lora.r,
            lora_alpha=lora.lora_alpha,
            target_modules=lora.target_modules,
            num_gpus=spec.resources.gpus,
        ),
    )


def chart_sample_ratio() -> float:
    """The share of traces the chart records by default (tracing.sampleRatio)."""
    values = yaml.safe_load((ROOT / "helm" / "train-conductor" / "values.yaml").read_text())
    return float(values["tracing"]["sampleRatio"])


@dataclass(frozen=True)
class Server:
    """A server under load: where ghz calls it, and its process, whose CPU
    time is read around each run."""

    target: str
    pid: int

    @classmethod
    def of(cls, service: Service, target: str) -> Server:
        assert service.process is not None, f"{service.name} is not running"
        return cls(target, service.process.pid)


@dataclass(frozen=True)
class Paired:
    """Alternating runs of a baseline and a server: the pair with the median
    ratio of throughputs, and every round's ratio, to show the spread; and
    each one's CPU a call, the median of its rounds. Calls a second swing by
    a tenth from one run to the next on a shared machine; CPU a call less,
    so it tells a change to the code from the machine's mood."""

    baseline: Load
    server: Load
    ratios: list[float]
    baseline_cpu_us: float
    server_cpu_us: float


def _paired(
    baseline: Server,
    server: Server,
    method: str,
    data: CallData,
    seconds: float,
    rounds: int,
    redis_url: str,
) -> Paired:
    """`rounds` runs of each, alternating which goes first, so that a slow
    spell of this machine, or a store grown by the earlier runs, hits both
    alike."""
    pairs = []
    cpu_us: dict[Server, list[float]] = {baseline: [], server: []}
    for round_ in range(rounds):
        order = (baseline, server) if round_ % 2 == 0 else (server, baseline)
        loads = {}
        for target in order:
            _rewrite_aof(redis_url)
            before = cpu_seconds(target.pid)
            load = run_ghz(target.target, method, data, seconds=seconds, concurrency=CONCURRENCY)
            cpu_us[target].append((cpu_seconds(target.pid) - before) / max(load.count, 1) * 1e6)
            loads[target] = load
        pairs.append((loads[baseline], loads[server]))
    ratios = [server_load.rps / baseline_load.rps for baseline_load, server_load in pairs]
    pairs.sort(key=lambda pair: pair[1].rps / pair[0].rps)
    median = pairs[len(pairs) // 2]
    return Paired(
        median[0],
        median[1],
        [round(ratio, 3) for ratio in ratios],
        round(statistics.median(cpu_us[baseline])),
        round(statistics.median(cpu_us[server])),
    )


def _half_peak(
    api: Server, method: str, data: CallData, seconds: float, rate: int, redis_url: str
) -> list[Load]:
    """HALF_PEAK_RUNS runs at `rate`, by p99. One p99 is a handful of
    calls: one spell of a core taken by another process (ghz, Redis, the
    API's own gRPC threads share two here) decides it, so the median run is
    judged, as the ratios are."""
    runs = []
    for _ in range(HALF_PEAK_RUNS):
        _rewrite_aof(redis_url)
        runs.append(
            run_ghz(api.target, method, data, seconds=seconds, concurrency=CONCURRENCY, rps=rate)
        )
    return sorted(runs, key=lambda load: load.p99_ms)


def _rewrite_aof(redis_url: str) -> None:
    """Rewrites Redis's append-only file now and waits for the end, so that no
    rewrite (a fork of Redis) lands inside a measured run: the bench turns the
    automatic ones off (`_hold_aof_rewrites`) and calls this between runs."""
    with redis.Redis.from_url(redis_url) as client:
        client.bgrewriteaof()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                return
            time.sleep(0.1)
    raise RuntimeError("Redis did not finish rewriting its append-only file within 2 minutes")


def _hold_aof_rewrites(redis_url: str) -> None:
    """The tens of thousands of trainings the runs make would set off Redis's
    automatic rewrites in the middle of whichever run is going on then."""
    with redis.Redis.from_url(redis_url) as client:
        client.config_set("auto-aof-rewrite-percentage", 0)


def _measure(
    api: Server,
    noop: Server,
    traced: dict[float, Server],
    seconds: float,
    rounds: int,
    redis_url: str,
    *,
    tracing_only: bool,
) -> int:
    with grpc.insecure_channel(api.target) as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        existing = stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec())).training
    create = json_format.MessageToDict(pb.CreateTrainingRequest(spec=lora_spec()))
    requests = {
        "CreateTraining": create,
        "GetTraining": {"id": existing.id},
        "Train": json_format.MessageToDict(legacy_train_request()),
    }
    _hold_aof_rewrites(redis_url)
    results: dict[str, dict[str, object]] = {}
    ok = True
    print(f"{'method':<16}{'server':<8}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for method, data in requests.items():
        if tracing_only:
            break
        run_ghz(api.target, method, data, seconds=2, concurrency=CONCURRENCY)  # warm up
        paired = _paired(noop, api, method, data, seconds, rounds, redis_url)
        baseline, peak = paired.baseline, paired.server
        half_rate = max(int(peak.rps / 2), 1)
        halves = _half_peak(api, method, data, seconds, half_rate, redis_url)
        half = halves[len(halves) // 2]
        for name, load in (("no-op", baseline), ("api", peak), ("api@50%", half)):
            print(
                f"{method:<16}{name:<8}{load.rps:>9.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}"
                f"{load.errors:>8}"
            )
        ratio = peak.rps / baseline.rps
        met = ratio >= TARGETS[method] and half.p99_ms < P99_TARGET_MS and peak.errors == 0
        ok &= met
        print(
            f"  {method}: {ratio:.3f}x the no-op server (target >= {TARGETS[method]}x); "
            f"p99 at half peak {half.p99_ms:.1f} ms, the median of "
            f"{', '.join(f'{load.p99_ms:.1f}' for load in halves)} "
            f"(target < {P99_TARGET_MS:.0f} ms): "
            f"{'met' if met else 'MISSED'}"
        )
        print(
            f"  CPU a call, the median of the rounds: the API {paired.server_cpu_us} µs, "
            f"the no-op {paired.baseline_cpu_us} µs"
        )
        results[method] = {
            "noop": asdict(baseline),
            "peak": asdict(peak),
            "half_peak": asdict(half),
            "half_peak_p99_ms_by_run": [round(load.p99_ms, 1) for load in halves],
            "ratio": round(ratio, 3),
            "ratios_by_round": paired.ratios,
            "cpu_us_per_call": {"noop": paired.baseline_cpu_us, "api": paired.server_cpu_us},
            "ratio_target": TARGETS[method],
            "p99_target_ms": P99_TARGET_MS,
            "met": met,
        }
    # Tracing on beside tracing off: at the chart's default share of traces
    # recorded (the target) and recording every call (for the record).
    data = requests["CreateTraining"]
    default_ratio = chart_sample_ratio()
    for target in (api, *traced.values()):  # warm up
        run_ghz(target.target, "CreateTraining", data, seconds=2, concurrency=CONCURRENCY)
    tracing: dict[str, object] = {"cost_target": TRACING_COST_TARGET}
    for ratio, target in traced.items():
        paired = _paired(api, target, "CreateTraining", data, seconds, rounds, redis_url)
        off, on = paired.baseline, paired.server
        cost = 1 - on.rps / off.rps
        costs = ", ".join(f"{1 - ratio:.0%}" for ratio in paired.ratios)
        judged = ratio == default_ratio
        met = cost <= TRACING_COST_TARGET
        if judged:
            ok &= met
        verdict = ("met" if met else "MISSED") if judged else "for the record"
        print(
            f"  CreateTraining with tracing on, recording {ratio:.0%} of traces"
            f"{' (the chart default)' if judged else ''}: {on.rps:.0f} rps beside {off.rps:.0f} "
            f"off, a cost of {cost:.0%}, the median of {costs} "
            f"(target <= {TRACING_COST_TARGET:.0%}): {verdict}; CPU a call "
            f"{paired.server_cpu_us} µs beside {paired.baseline_cpu_us} µs off"
        )
        tracing[f"sample_ratio_{ratio}"] = {
            "off": asdict(off),
            "on": asdict(on),
            "cost": round(cost, 3),
            "costs_by_round": [round(1 - ratio, 3) for ratio in paired.ratios],
            "cpu_us_per_call": {"off": paired.baseline_cpu_us, "on": paired.server_cpu_us},
            "chart_default": judged,
            "met": met,
        }
    results["tracing"] = tracing
    out = ROOT / "build" / "bench" / "api.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"time": time.time(), "results": results}, indent=2))
    print(f"written to {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sigterm_as_interrupt()
    sys.exit(main())


__all__ = ["Load", "main"]
