"""The controller killed at random moments during a burst of submissions:
every training still ends right, with exactly one Job each, no orphans."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from trainconductor.v1 import training_service_pb2 as pb

from devstack.job_counter import JobCreations
from devstack.specs import lora_spec
from devstack.stack import Stack
from devstack.waiting import wait_for

BURST = 200


def test_sigkill_during_a_burst_loses_nothing_and_duplicates_nothing(stack: Stack) -> None:
    creations = JobCreations(stack.kube, stack.namespace)
    rng = random.Random(20261129)
    ids: list[str] = []
    submitting = threading.Event()
    submitting.set()

    def submit(i: int) -> str:
        return stack.create(lora_spec(f"burst-{i}"), request_id=f"burst-{i}").id

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
        ids = list(pool.map(submit, range(BURST)))
        submitting.clear()
        kills = killer.result()
    assert kills >= 4
    assert len(set(ids)) == BURST

    def unfinished() -> list[str]:
        final = {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED}
        return [i for i in ids if stack.get(i).phase not in final]

    wait_for("every training to finish", lambda: not unfinished(), timeout=240,
             describe=lambda: f"{len(unfinished())} unfinished")  # fmt: skip
    phases = {stack.get(i).phase for i in ids}
    assert phases == {pb.PHASE_COMPLETED}

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
