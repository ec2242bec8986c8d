"""Two controller replicas: only the leader acts; kill it and the other
takes over within the lease duration, losing and duplicating nothing; stop
it gracefully and it hands the Lease over at once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from devstack.job_counter import JobCreations
from devstack.specs import lora_spec
from devstack.stack import LEASE_SECONDS, Cluster, Stack, running_stack
from devstack.waiting import wait_for


def holder(stack: Stack) -> str:
    lease = client.CoordinationV1Api(stack.kube).read_namespaced_lease(
        "train-conductor-controller", stack.namespace
    )
    return str(lease.spec.holder_identity)


def test_only_the_leader_acts_and_a_follower_takes_over(stack: Stack) -> None:
    creations = JobCreations(stack.kube, stack.namespace)
    follower = stack.start_controller("controller-1")
    assert holder(stack) == "controller-0"
    first = [stack.create(lora_spec(f"before-{i}")).id for i in range(10)]
    for training_id in first:
        stack.wait_for_phase(training_id, {pb.PHASE_COMPLETED})

    stack.controllers["controller-0"].kill()
    killed_at = time.monotonic()
    second = [stack.create(lora_spec(f"after-{i}")).id for i in range(10)]
    wait_for("the follower to lead", lambda: holder(stack) == "controller-1", timeout=30)
    takeover = time.monotonic() - killed_at
    # Within the lease duration, plus one retry period and the API's latency.
    assert takeover < LEASE_SECONDS + 2.5, f"takeover took {takeover:.1f}s"
    for training_id in second:
        stack.wait_for_phase(training_id, {pb.PHASE_COMPLETED})

    created = creations.stop()
    assert set(created) == {f"train-{i}" for i in first + second}
    assert set(created.values()) == {1}
    created_while_following = [
        line
        for line in follower.stopped_log().splitlines()
        if '"job created"' in line and any(training_id in line for training_id in first)
    ]
    assert created_while_following == [], "a follower created a Job"


def test_a_leader_stopped_gracefully_hands_the_lease_over_at_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A rolling update: the leader gets SIGTERM. With a 30 s Lease, waiting
    it out would leave nobody creating Jobs for 30 s."""
    env = {"TC_LEASE_DURATION_SECONDS": "30", "TC_RENEW_DEADLINE_SECONDS": "20"}
    with running_stack(cluster, tmp_path, env) as stack:
        stack.start_controller("controller-1", **env)
        assert holder(stack) == "controller-0"
        stopped_at = time.monotonic()
        assert stack.controllers["controller-0"].signal(signal.SIGTERM) == 0
        wait_for("the follower to lead", lambda: holder(stack) == "controller-1", timeout=40)
        handover = time.monotonic() - stopped_at
        # One retry period (1 s) and the API's latency, not the 30 s Lease.
        assert handover < 5, f"handover took {handover:.1f}s"
        assert "released the Lease" in stack.controllers["controller-0"].log_path.read_text()
        training = stack.create(lora_spec("after-handover"))
        stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED})
