"""Redis restarted mid-run (AOF on): the controller recovers and no change is lost."""

from __future__ import annotations

import time

from trainconductor.v1 import training_service_pb2 as pb

from devstack.job_counter import JobCreations
from devstack.specs import lora_spec
from devstack.stack import Stack
from devstack.waiting import wait_for


def test_a_redis_restart_loses_no_change(stack: Stack) -> None:
    creations = JobCreations(stack.kube, stack.namespace)
    before = [stack.create(lora_spec(f"before-{i}")).id for i in range(20)]
    time.sleep(1.2)  # appendfsync everysec
    stack.redis.stop()
    time.sleep(2)
    stack.redis.start()
    wait_for("the API to answer again", lambda: _answers(stack))
    after = [stack.create(lora_spec(f"after-{i}")).id for i in range(20)]
    for training_id in before + after:
        stack.wait_for_phase(training_id, {pb.PHASE_COMPLETED}, timeout=120)
    created = creations.stop()
    assert set(created) == {f"train-{i}" for i in before + after}
    assert set(created.values()) == {1}


def _answers(stack: Stack) -> bool:
    try:
        stack.trainings.ListTrainings(pb.ListTrainingsRequest(page_size=1), timeout=2)
        return True
    except Exception:  # noqa: BLE001 - still coming back
        return False
