"""A storm of queued submissions while things fail: the controller is
SIGKILLed again and again while 200 trainings are submitted to a Kueue
queue, and Kueue's manager is killed and started again mid-run. Every
training still reaches its final state, with exactly one Job each (counted
by a watch of every creation), and no Job without a training."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.job_counter import JobCreations
from devstack.kueue import Kueue
from devstack.queues import applied, cluster_queue, drain, local_queue
from devstack.specs import lora_spec
from devstack.stack import Cluster, Stack, running_stack
from devstack.waiting import wait_for

STORM = 200
FINAL = {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED}


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, kueue: Kueue, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        cluster, Path(tmp_path_factory.mktemp("stack")), env={"TC_QUEUES_ENABLED": "true"}
    ) as running:
        try:
            yield running
        finally:
            drain(kueue.kube, running.namespace)


@pytest.fixture
def queue(kueue: Kueue, stack: Stack) -> Iterator[str]:
    """A LocalQueue to a ClusterQueue of its own with room for many small
    trainings at once (no GPU; a CPU each)."""
    name = f"storm-{uuid.uuid4().hex[:6]}"
    objects = [
        cluster_queue(name, gpus=0, cpu="48", memory="192Gi"),
        local_queue(name, stack.namespace, name),
    ]
    with applied(kueue.kube, objects):
        yield name
        drain(kueue.kube, stack.namespace)


def small(i: int, queue: str) -> pb.TrainingSpec:
    spec = lora_spec(f"storm-{i}")
    spec.resources.gpus = 0
    spec.resources.cpu, spec.resources.memory = "1", "1Gi"
    spec.queue = queue
    return spec


def test_controller_sigkills_and_a_kueue_restart_during_200_queued_submissions_lose_nothing(
    kueue: Kueue, stack: Stack, queue: str
) -> None:
    creations = JobCreations(stack.kube, stack.namespace)
    rng = random.Random(20261205)
    submitting = threading.Event()
    submitting.set()

    def submit(i: int) -> str:
        return stack.create(small(i, queue), request_id=f"storm-{i}").id

    def chaos() -> int:
        kills = 0
        while submitting.is_set() or kills < 4:
            time.sleep(rng.uniform(0.2, 1.5))
            stack.controllers["controller-0"].kill()
            kills += 1
            stack.start_controller("controller-0")
        return kills

    with ThreadPoolExecutor(9) as pool:
        killer = pool.submit(chaos)
        submissions = [pool.submit(submit, i) for i in range(STORM)]
        # Mid-run, from this (the main) thread: Kueue's manager dies and
        # comes back while trainings are submitted, queued and admitted.
        wait_for(
            "half the storm to be submitted",
            lambda: sum(f.done() for f in submissions) >= STORM // 2,
            timeout=120,
        )
        kueue.restart()
        ids = [f.result() for f in submissions]
        submitting.clear()
        kills = killer.result()
    assert kills >= 4
    assert len(set(ids)) == STORM

    def unfinished() -> list[str]:
        return [i for i in ids if stack.get(i).phase not in FINAL]

    wait_for("every training to finish", lambda: not unfinished(), timeout=420,
             describe=lambda: f"{len(unfinished())} unfinished, e.g. "
                              f"{[str(stack.get(i)) for i in unfinished()[:2]]}")  # fmt: skip
    outcomes = {(t.phase, t.reason) for t in (stack.get(i) for i in ids)}
    assert outcomes == {(pb.PHASE_COMPLETED, "Completed")}

    expected = {f"train-{i}" for i in ids}
    wait_for("the counting watch to see every training's Job",
             lambda: expected <= set(creations.first_seen) or creations.error,
             describe=lambda: f"{len(expected - set(creations.first_seen))} not seen")  # fmt: skip
    created = creations.stop()
    assert creations.error is None
    assert set(created) == expected, "a training has no Job, or a Job has no training"
    duplicated = {name: n for name, n in created.items() if n != 1}
    assert not duplicated, f"Jobs created more than once: {duplicated}"
    orphans = [j.metadata.name for j in stack.jobs() if j.metadata.name not in expected]
    assert orphans == []
