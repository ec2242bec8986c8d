"""Multi-node benchmark, against the real control plane: fifty 4-node
trainings submitted at once through the API, and the time from their
submission until all four ranks of each run (p50, p99), beside a bare loop of
the Kubernetes client creating the same Indexed Jobs and headless Services,
a thread per training (none waits for another), in the same run.

Both sides are timed from the moment the batch is handed over: a training
that waits its turn in the controller's queue waits within the measure.
The figures timed from each one's own start (the system's submission, the
bare loop's first POST) are printed too, as earlier runs measured them.

    python -m bench.multinode [--trainings 50] [--nodes 4] [--rounds 2]

Both sides wait for the same scheduler and the same fake kubelets, so the
target is a ratio: the system's p50 and p99 at most 1.2x the bare loop's.
Rounds alternate which side goes first, each side on a new namespace (the
system's with a new API, controller and Redis);
the target is judged on the median of the rounds' ratios, as a busy machine
moves single rounds either way (the load average is printed beside them).
Writes build/bench/multinode.json; exits 0 when the target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import urllib3
from kubernetes import client, watch
from trainconductor.v1 import training_service_pb2 as pb

from bench.controller import SHIPPED_WORKERS, percentile
from bench.ghz import ROOT
from devstack.interrupts import sigterm_as_interrupt
from devstack.specs import lora_spec
from devstack.stack import Stack, given_or_local_cluster, running_stack
from devstack.waiting import wait_for
from trainconductor_controller.jobs import build_job, build_service
from trainconductor_controller.kube import post_manifest
from trainconductor_controller.names import COMPLETION_INDEX, JOB_NAME_LABEL
from trainconductor_controller.settings import ControllerSettings
from trainconductor_core.record import TrainingRecord
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import TrainingStore

TARGET = 1.2
THREADS = 8
TIMEOUT = 30  # seconds a bare loop's POST may take
# Ranks keep running while the others start: the measure ends at the last.
RUN = "600s"
TOLERATIONS = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]


class RanksRunning:
    """When each rank of each Job of a namespace was first seen running,
    by a watch of its pods (by this process's clock)."""

    def __init__(self, kube: client.ApiClient, namespace: str) -> None:
        self.first_running: dict[str, dict[int, float]] = defaultdict(dict)
        self._kube = kube
        self._namespace = namespace
        self._watch = watch.Watch()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        api = client.CoreV1Api(kube)
        # Without preloading, the raw urllib3 response comes back, not a V1PodList.
        listed = cast(
            urllib3.HTTPResponse,
            api.list_namespaced_pod(namespace, limit=1, _preload_content=False),
        )
        self._version = json.loads(listed.data)["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        api = client.CoreV1Api(self._kube)
        while not self._stopped.is_set():
            try:
                for event in self._watch.stream(
                    api.list_namespaced_pod,
                    self._namespace,
                    resource_version=self._version,
                    deserialize=False,
                    timeout_seconds=300,
                ):
                    if event is None or event["type"] == "ERROR":
                        continue
                    pod = event["object"]
                    self._version = pod["metadata"]["resourceVersion"]
                    labels = pod["metadata"].get("labels") or {}
                    if pod.get("status", {}).get("phase") != "Running":
                        continue
                    if JOB_NAME_LABEL in labels and COMPLETION_INDEX in labels:
                        with self._lock:
                            ranks = self.first_running[labels[JOB_NAME_LABEL]]
                            ranks.setdefault(int(labels[COMPLETION_INDEX]), time.monotonic())
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError):
                time.sleep(0.1)

    def all_running(self, job: str, nodes: int) -> float | None:
        """When the last of the Job's `nodes` ranks first ran; None while one has not."""
        with self._lock:
            ranks = dict(self.first_running.get(job, {}))
        return max(ranks.values()) if len(ranks) == nodes else None

    def stop(self) -> None:
        self._stopped.set()
        self._watch.stop()


def gang_spec(i: int, nodes: int) -> pb.TrainingSpec:
    spec = lora_spec(f"gang-{i}")
    spec.resources.nodes = nodes
    # No GPUs and small requests: the nodes' capacity is not what is measured.
    spec.resources.gpus, spec.resources.cpu, spec.resources.memory = 0, "100m", "128Mi"
    return spec


def _summary(
    ranks: RanksRunning, submitted: dict[str, float], batch: float, nodes: int, timeout: float
) -> dict[str, float]:
    """When all ranks of each Job ran, counted from when the whole batch was
    handed over (`batch`: judged) and from each one's own start (`own_`:
    the system's submission, the bare loop's first POST), as earlier runs did."""

    def missing() -> list[str]:
        return [job for job in submitted if ranks.all_running(job, nodes) is None]

    wait_for(f"all {nodes} ranks of {len(submitted)} Jobs to run", lambda: not missing(), timeout,
             describe=lambda: f"{len(missing())} not all running")  # fmt: skip
    ranks.stop()
    running = {job: ranks.all_running(job, nodes) or 0.0 for job in submitted}
    from_batch = [at - batch for at in running.values()]
    own = [running[job] - at for job, at in submitted.items()]
    return {
        "p50_ms": round(percentile(from_batch, 50) * 1000, 1),
        "p99_ms": round(percentile(from_batch, 99) * 1000, 1),
        "mean_ms": round(statistics.mean(from_batch) * 1000, 1),
        "own_p50_ms": round(percentile(own, 50) * 1000, 1),
        "own_p99_ms": round(percentile(own, 99) * 1000, 1),
    }


def through_the_system(stack: Stack, count: int, nodes: int, round_: int) -> dict[str, float]:
    ranks = RanksRunning(stack.kube, stack.namespace)
    submitted: dict[str, float] = {}

    def submit(i: int) -> None:
        at = time.monotonic()
        training = stack.create(gang_spec(i, nodes), request_id=f"gang-{round_}-{i}")
        submitted[f"train-{training.id}"] = at

    batch = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(submit, range(count)))
    summary = _summary(ranks, submitted, batch, nodes, timeout=180)
    for job in submitted:
        stack.cancel(job.removeprefix("train-"))
    core = client.CoreV1Api(stack.kube)
    wait_for("the canceled trainings' pods to go",
             lambda: not core.list_namespaced_pod(stack.namespace).items, 180)  # fmt: skip
    return summary


async def _records(redis_url: str, count: int, nodes: int) -> list[TrainingRecord]:
    store = TrainingStore(
        connect(CommonSettings(redis_url=redis_url, redis_key_prefix="bare:")), prefix="bare:"
    )
    made = [(await store.create(gang_spec(i, nodes), owner="bench"))[0] for i in range(count)]
    await store.close()
    return made


def bare_loop(stack: Stack, count: int, nodes: int) -> dict[str, float]:
    """The same Indexed Jobs and Services, made by the client alone, a thread
    per training: each Job, then its Service owned by it."""
    namespace = f"bench-bare-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(stack.kube)
    batch = client.BatchV1Api(stack.kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    submitted: dict[str, float] = {}
    try:
        settings = ControllerSettings(
            namespace=namespace, image="example.com/trainer:1", tolerations=TOLERATIONS,
            pod_annotations={"kwok.trainconductor.dev/run-duration": RUN},
        )  # fmt: skip
        records = asyncio.run(_records(stack.redis.url, count, nodes))
        ranks = RanksRunning(stack.kube, namespace)

        def make(record: TrainingRecord) -> None:
            manifest = build_job(record, settings)
            name = manifest["metadata"]["name"]
            submitted[name] = time.monotonic()
            # Posted as they are, as the controller does (kube.py), not
            # through the client's typed models: both sides pay the same.
            jobs, services = (
                f"/apis/batch/v1/namespaces/{namespace}/jobs",
                f"/api/v1/namespaces/{namespace}/services",
            )
            made = json.loads(post_manifest(stack.kube, jobs, manifest, TIMEOUT).data)
            service = build_service(record, settings, name, made["metadata"]["uid"])
            post_manifest(stack.kube, services, service, TIMEOUT).drain_conn()

        handed_over = time.monotonic()
        # A thread per training: none waits for a free one, so this side is
        # what the control plane takes, at its fastest.
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(make, records))
        return _summary(ranks, submitted, handed_over, nodes, timeout=180)
    finally:
        # As a cancel does: each Job with its pods (and, through its owner,
        # its Service); the pods gone before the next measurement starts.
        for name in list(submitted):
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        wait_for(f"the pods of {namespace} to go", _no_pods(core, namespace), 180)
        core.delete_namespace(namespace)


def _no_pods(core: client.CoreV1Api, namespace: str) -> Callable[[], bool]:
    def gone() -> bool:
        return not core.list_namespaced_pod(namespace).items

    return gone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trainings", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    annotations = json.dumps({"kwok.trainconductor.dev/run-duration": RUN})
    rounds: list[dict[str, Any]] = []
    with given_or_local_cluster() as cluster:
        for i in range(args.rounds):
            measured: dict[str, Any] = {}
            order = ("system", "bare") if i % 2 == 0 else ("bare", "system")
            # Each side on a namespace of its own, new each round, and the
            # system started anew: neither inherits what an earlier round left.
            work = Path(tempfile.mkdtemp(prefix="bench-multinode-"))
            with running_stack(
                cluster,
                work,
                controller_env={
                    "TC_POD_ANNOTATIONS": annotations,
                    "TC_WORKERS": str(SHIPPED_WORKERS),
                },
            ) as stack:
                for side in order:
                    if side == "system":
                        measured[side] = through_the_system(stack, args.trainings, args.nodes, i)
                    else:
                        measured[side] = bare_loop(stack, args.trainings, args.nodes)
            shutil.rmtree(work, ignore_errors=True)
            rounds.append(measured)
    return report({"trainings": args.trainings, "nodes": args.nodes, "rounds": rounds})


def report(results: dict[str, Any]) -> int:
    print(
        f"  {results['trainings']} trainings of {results['nodes']} nodes, submitted from "
        f"{THREADS} threads (the bare loop: one per training): submission to all ranks "
        "running (load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    ratios: dict[str, list[float]] = {"p50": [], "p99": []}
    for i, measured in enumerate(results["rounds"], 1):
        system, bare = measured["system"], measured["bare"]
        said = []
        for p in ratios:
            ratio = system[f"{p}_ms"] / bare[f"{p}_ms"]
            measured[f"{p}_ratio"] = round(ratio, 3)
            ratios[p].append(ratio)
            said.append(
                f"{p} {system[f'{p}_ms']:.0f} ms vs {bare[f'{p}_ms']:.0f} ms = {ratio:.2f}x"
            )
        print(f"  round {i}: through the system vs a bare loop of Jobs and Services: "
              + ", ".join(said))  # fmt: skip
        own = {p: system[f"own_{p}_ms"] / bare[f"own_{p}_ms"] for p in ratios}
        print(
            "    (from each one's own start instead of the batch's: "
            + ", ".join(f"{p} {own[p]:.2f}x" for p in ratios)
            + ")"
        )
    met = True
    for p, values in ratios.items():
        median = statistics.median(values)
        results[f"{p}_ratio_median"] = round(median, 3)
        ok = median <= TARGET
        met = met and ok
        print(
            f"  {'met   ' if ok else 'MISSED'}  submission to all ranks running, {p}: median "
            f"{median:.2f}x the bare loop's over {len(values)} rounds (target <= {TARGET}x)"
        )
    results["met"] = met
    out = ROOT / "build" / "bench" / "multinode.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
    return 0 if met else 1


if __name__ == "__main__":
    sigterm_as_interrupt()
    sys.exit(main())
