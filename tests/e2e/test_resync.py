"""The periodic full resync, the safety net under the change feed: a
training whose change-feed entry was lost is still taken up."""

from __future__ import annotations

import redis
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from devstack.stack import Stack


def test_a_training_whose_change_was_lost_is_taken_up_by_the_resync(stack: Stack) -> None:
    stack.controllers.pop("controller-0").stop()
    training = stack.create(lora_spec())
    with redis.Redis.from_url(stack.redis.url) as client:
        # As if Redis had lost the entry (a failover to a replica behind).
        assert client.xtrim("tc:changes", maxlen=0) >= 1
    stack.start_controller("controller-0")  # it resyncs as it starts leading
    taken_up = stack.wait_for_phase(
        training.id, {pb.PHASE_QUEUED, pb.PHASE_RUNNING, pb.PHASE_COMPLETED}, timeout=60
    )
    assert taken_up.job_name == f"train-{training.id}"
