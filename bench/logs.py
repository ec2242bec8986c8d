"""Trainings' logs, against the real control plane (kwok serving a pod's log
file): StreamTrainingLogs of a long log beside the Kubernetes client reading
the same log itself in the same run, the rate limit, and the API's memory
while a client stalls.

    python -m bench.logs [--lines 300000] [--rounds 3]

Three measures:
- throughput: the whole log through the API (its line rate lifted) against
  the Kubernetes client reading it (with timestamps, as the API does): lines
  per second, target at least 0.5x the bare read's (the API reads the same
  bytes, then cuts lines and sends them over gRPC). Rounds alternate which
  side goes first; the target is judged on their median ratio. Each round
  also gives the API's CPU a line, which tells a change to the code from
  the machine's mood better than lines a second do: the stream goes at the
  pace of its slowest part, and the API is not always that part.
- the rate: a stream at the default limit (log_lines_per_second, 2000)
  sends at most that many lines a second after its first second's burst.
- a stalled client: a follow that reads one message and then nothing for 10 s
  grows the API's resident memory by less than 16 MiB, however long the log.

Writes build/bench/logs.json; exits 0 when every target is met.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import urllib3
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from bench.cpu import cpu_seconds
from bench.ghz import ROOT
from devstack.interrupts import sigterm_as_interrupt
from devstack.pod_logs import PodLog, cri_line, serve_pod_log
from devstack.specs import lora_spec
from devstack.stack import Stack, given_or_local_cluster, running_stack
from devstack.waiting import wait_for

RATIO_TARGET = 0.5
RATE = 2000
RATE_LINES = 20_000
STALL_SECONDS = 10
RSS_TARGET_MIB = 16
LINE = "step {} loss 1.2345 lr 0.0002 tokens/s 12345.6 " + "x" * 60


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def logged_training(stack: Stack, directory: Path, lines: int) -> tuple[str, str]:
    """A running training whose pod's log holds `lines` lines; its id and pod."""
    training = stack.create(lora_spec())
    pod = wait_for("its pod to run", lambda: running_pods(stack, f"train-{training.id}"))[0]
    path = directory / f"{training.id}.log"
    now = datetime.datetime.now(datetime.UTC)
    with path.open("w") as f:
        for i in range(lines):
            f.write(cri_line(LINE.format(i), now))
    serve_pod_log(stack.kube, stack.namespace, pod, PodLog(path))
    core = client.CoreV1Api(stack.kube)
    wait_for(
        "kwok to serve its log",
        lambda: core.read_namespaced_pod_log(pod, stack.namespace, tail_lines=1).startswith("step"),
    )
    return training.id, str(pod)


def running_pods(stack: Stack, job: str) -> list[str]:
    return [
        str(p.metadata.name)
        for p in stack.pods_of(job)
        if p.metadata is not None and p.status is not None and p.status.phase == "Running"
    ]


def through_the_api(stack: Stack, training_id: str) -> tuple[int, float, float]:
    """Lines read, the seconds it took, and the API's CPU seconds meanwhile."""
    pid = api_pid(stack)
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    lines = 0
    request = pb.StreamTrainingLogsRequest(id=training_id)
    for response in stack.trainings.StreamTrainingLogs(request, timeout=600):
        lines += len(response.lines)
    return lines, time.perf_counter() - start, cpu_seconds(pid) - cpu


def api_pid(stack: Stack) -> int:
    assert stack.api is not None, "the stack runs no API"
    assert stack.api.process is not None, "the stack's API is not running"
    return stack.api.process.pid


def bare_read(stack: Stack, pod: str) -> tuple[int, float]:
    core = client.CoreV1Api(stack.kube)
    start = time.perf_counter()
    response = cast(
        urllib3.HTTPResponse,
        core.read_namespaced_pod_log(
            pod, stack.namespace, timestamps=True, _preload_content=False, _request_timeout=600
        ),
    )
    lines = 0
    try:
        for chunk in response.stream(64 * 1024):
            lines += chunk.count(b"\n")
    finally:
        response.close()
    return lines, time.perf_counter() - start


def stalled(stack: Stack, training_id: str) -> dict[str, float]:
    pid = api_pid(stack)
    call = stack.trainings.StreamTrainingLogs(
        pb.StreamTrainingLogsRequest(id=training_id, follow=True), timeout=600
    )
    next(call)
    before = rss_mib(pid)
    time.sleep(STALL_SECONDS)
    after = rss_mib(pid)
    call.cancel()
    return {"rss_before_mib": round(before, 1), "rss_after_mib": round(after, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    annotations = json.dumps({"kwok.trainconductor.dev/run-duration": "1h"})
    results: dict[str, Any] = {"lines": args.lines, "rounds": []}
    work = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    try:
        with given_or_local_cluster() as cluster:
            lifted = {"TC_LOG_LINES_PER_SECOND": "1e9"}
            controller = {"TC_POD_ANNOTATIONS": annotations}
            with running_stack(cluster, work / "lifted", lifted, controller) as stack:
                training_id, pod = logged_training(stack, work, args.lines)
                for i in range(args.rounds):
                    sides = ("api", "bare") if i % 2 == 0 else ("bare", "api")
                    measured: dict[str, float] = {}
                    for side in sides:
                        if side == "api":
                            lines, took, cpu = through_the_api(stack, training_id)
                            measured["api_cpu_us_per_line"] = round(cpu / lines * 1e6, 1)
                        else:
                            lines, took = bare_read(stack, pod)
                        assert lines == args.lines, f"{side} read {lines} of {args.lines} lines"
                        measured[f"{side}_lines_per_second"] = round(lines / took)
                    results["rounds"].append(measured)
                results["stalled"] = stalled(stack, training_id)
            with running_stack(cluster, work / "limited", None, controller) as stack:
                training_id, _ = logged_training(stack, work, RATE_LINES)
                lines, took, _ = through_the_api(stack, training_id)
                results["rate"] = {"lines": lines, "seconds": round(took, 2)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(results)


def report(results: dict[str, Any]) -> int:
    print(
        f"  a pod's log of {results['lines']} lines through the API and read bare (load "
        f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    ratios = []
    for i, measured in enumerate(results["rounds"], 1):
        ratio = measured["api_lines_per_second"] / measured["bare_lines_per_second"]
        measured["ratio"] = round(ratio, 3)
        ratios.append(ratio)
        print(
            f"  round {i}: {measured['api_lines_per_second']} lines/s through the API vs "
            f"{measured['bare_lines_per_second']} read bare = {ratio:.2f}x; the API's CPU "
            f"{measured['api_cpu_us_per_line']} µs a line"
        )
    median = statistics.median(ratios)
    results["ratio_median"] = round(median, 3)
    cpu = statistics.median(measured["api_cpu_us_per_line"] for measured in results["rounds"])
    results["api_cpu_us_per_line_median"] = cpu
    print(f"  the API's CPU a line, the median of the rounds: {cpu} µs")
    checks = [
        (
            median >= RATIO_TARGET,
            f"throughput: median {median:.2f}x the bare read's (target >= {RATIO_TARGET}x)",
        )
    ]
    rate = results["rate"]
    # The first second's burst, then the rate: the least time it may take.
    least = (rate["lines"] - RATE) / RATE
    checks.append(
        (
            rate["seconds"] >= least * 0.95,
            f"rate: {rate['lines']} lines in {rate['seconds']} s at the default limit "
            f"({rate['lines'] / rate['seconds']:.0f} lines/s; at least {least:.1f} s with "
            f"{RATE} a second after a second's burst)",
        )
    )
    held = results["stalled"]
    grown = held["rss_after_mib"] - held["rss_before_mib"]
    checks.append(
        (
            grown < RSS_TARGET_MIB,
            f"a client stalled {STALL_SECONDS} s on the whole log: the API's RSS "
            f"{held['rss_before_mib']} -> {held['rss_after_mib']} MiB (target: grows "
            f"< {RSS_TARGET_MIB} MiB)",
        )
    )
    met = all(ok for ok, _ in checks)
    for ok, said in checks:
        print(f"  {'met   ' if ok else 'MISSED'}  {said}")
    results["met"] = met
    out = ROOT / "build" / "bench" / "logs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
    return 0 if met else 1


if __name__ == "__main__":
    sigterm_as_interrupt()
    sys.exit(main())
