"""The Kubernetes API server restarted mid-run: the controller's watches
resume or relist, no change is lost, no Job is made twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from devstack.stack import Cluster, Stack, running_stack
from devstack.waiting import wait_for


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A lease that outlasts the outage, as in production (15s): the leader
    keeps leading, so its watches, not a new leader's first list, must
    catch up with what happened meanwhile."""
    env = {"TC_LEASE_DURATION_SECONDS": "20", "TC_RENEW_DEADLINE_SECONDS": "15"}
    with running_stack(cluster, tmp_path_factory.mktemp("restart"), env) as running:
        yield running


def test_an_api_server_restart_loses_nothing(stack: Stack) -> None:
    local = stack.cluster.local
    assert local is not None, "restarting needs the local control plane"
    before = [stack.create(lora_spec(f"before-{i}")).id for i in range(10)]
    wait_for(
        "some trainings to run",
        lambda: any(stack.get(i).phase == pb.PHASE_RUNNING for i in before),
    )
    uids = {j.metadata.name: j.metadata.uid for j in stack.jobs()}

    during: list[str] = []

    def submit_while_down() -> None:
        during.extend(stack.create(lora_spec(f"during-{i}")).id for i in range(10))

    submitter = threading.Thread(target=submit_while_down)
    local.restart_apiserver(pause_seconds=3, on_stopped=submitter.start)
    submitter.join()
    after = [stack.create(lora_spec(f"after-{i}")).id for i in range(5)]

    for training_id in before + during + after:
        stack.wait_for_phase(training_id, {pb.PHASE_COMPLETED}, timeout=120)
    jobs = {j.metadata.name: j.metadata.uid for j in stack.jobs()}
    assert set(jobs) == {f"train-{i}" for i in before + during + after}
    recreated = [name for name, uid in uids.items() if jobs.get(name) != uid]
    assert recreated == [], "a Job was deleted and made again"
    controller = stack.controllers["controller-0"]
    assert controller.alive, "the leader should have ridden out the outage"
    controller.wait_for_log("watch failed; retrying", "relisting")
