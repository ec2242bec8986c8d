"""Trainings in Kueue's queues, end to end: the API, the controller, the real
control plane and the real Kueue. A training waits for quota with Kueue's
own words and its place in the queue, in submission order, moving up; a
missing queue or priority class is named and the training runs once it
exists; an owner holds and releases a training; a cancel while queued or
held frees its queue; an installation without queues refuses a queue,
naming the field."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from devstack.kueue import Kueue
from devstack.queues import (
    GROUP,
    VERSION,
    applied,
    apply,
    cluster_queue,
    drain,
    local_queue,
    priority_class,
    workload_of_job,
)
from devstack.specs import lora_spec
from devstack.stack import Cluster, Stack, running_stack
from devstack.waiting import wait_for
from tests.support.grpc_errors import violated_fields

WAITING = {pb.PHASE_QUEUED}


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, kueue: Kueue, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The system with queues on; its Jobs are gone (and Kueue let their
    Workloads go) before its namespace is deleted."""
    with running_stack(
        cluster,
        Path(tmp_path_factory.mktemp("stack")),
        env={"TC_QUEUES_ENABLED": "true"},
        controller_env={"TC_QUEUE_POSITION_REFRESH_SECONDS": "0.5"},
    ) as running:
        try:
            yield running
        finally:
            drain(kueue.kube, running.namespace)


@pytest.fixture
def team(kueue: Kueue, stack: Stack) -> Iterator[str]:
    """A LocalQueue of the stack's namespace to a ClusterQueue of its own,
    with no GPU at all: everything waits until a test gives it some."""
    name = f"team-{uuid.uuid4().hex[:6]}"
    objects = [cluster_queue(name, gpus=0), local_queue(name, stack.namespace, name)]
    with applied(kueue.kube, objects):
        yield name
        drain(kueue.kube, stack.namespace)


def give_gpus(kueue: Kueue, name: str, gpus: int) -> None:
    apply(kueue.kube, cluster_queue(name, gpus=gpus))


def create(stack: Stack, queue: str, priority: str = "", gpus: int = 1) -> pb.Training:
    spec = lora_spec()
    spec.resources.gpus = gpus
    spec.queue, spec.priority = queue, priority
    return stack.create(spec)


def standing(
    stack: Stack, training_id: str, reason: str, saying: str = "", timeout: float = 60
) -> pb.Training:
    found: pb.Training = wait_for(
        f"training {training_id} to be {reason}" + (f", saying {saying!r}" if saying else ""),
        lambda: (t := stack.get(training_id)).reason == reason and saying in t.message and t,
        timeout,
        describe=lambda: str(stack.get(training_id)),
    )
    return found


def workload_made_at(stack: Stack, training_id: str) -> float:
    """When Kueue made the Workload of the training's Job (to the second, as
    the API server keeps it): what Kueue orders a queue by, which may be a
    second later than the Job."""
    name = standing(stack, training_id, "WaitingForQuota").job_name
    job = client.BatchV1Api(stack.kube).read_namespaced_job(name, stack.namespace)
    uid = str(job.metadata.uid)
    workload = wait_for(
        f"the Workload of Job {name}", lambda: workload_of_job(stack.kube, stack.namespace, uid)
    )
    return datetime.fromisoformat(workload["metadata"]["creationTimestamp"]).timestamp()


def cluster_queue_status(kueue: Kueue, name: str) -> dict[str, Any]:
    found: Any = client.CustomObjectsApi(kueue.kube).get_cluster_custom_object(
        GROUP, VERSION, "clusterqueues", name
    )
    status: dict[str, Any] = found.get("status", {})
    return status


def test_a_training_waits_for_quota_in_kueues_words_then_runs_when_there_is_some(
    kueue: Kueue, stack: Stack, team: str
) -> None:
    training = create(stack, team)
    assert training.queue == team
    # Kueue's words, once it has tried: at first it has none.
    waiting = standing(
        stack, training.id, "WaitingForQuota", "insufficient quota for nvidia.com/gpu in flavor gpu"
    )
    assert waiting.phase == pb.PHASE_QUEUED
    wait_for("its place, first", lambda: stack.get(training.id).queue_position == 1)
    job = client.BatchV1Api(stack.kube).read_namespaced_job(waiting.job_name, stack.namespace)
    assert job.spec.suspend is True
    assert job.metadata.labels["kueue.x-k8s.io/queue-name"] == team
    give_gpus(kueue, team, 1)
    done = stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED})
    assert done.queue_position == 0


def test_places_are_in_submission_order_and_move_up(kueue: Kueue, stack: Stack, team: str) -> None:
    # Kueue orders a queue by priority, then by its Workloads' creation
    # times, which the API server keeps to the second (then by uid): each
    # training is submitted once the Workload of the one before is older
    # than a second, so that submission order is Kueue's order.
    trainings = []
    for _ in range(5):
        trainings.append(create(stack, team))
        next_second = workload_made_at(stack, trainings[-1].id) + 1
        wait_for("the next second", lambda: time.time() >= next_second)  # noqa: B023

    def places() -> list[int]:
        return [stack.get(t.id).queue_position for t in trainings]

    wait_for("places 1 to 5 in submission order", lambda: places() == [1, 2, 3, 4, 5],
             describe=lambda: str(places()))  # fmt: skip
    # The first two leave the queue (held): the others move up.
    for held in trainings[:2]:
        stack.trainings.HoldTraining(pb.HoldTrainingRequest(id=held.id), timeout=10)
    wait_for("the rest to move up", lambda: places()[2:] == [1, 2, 3],
             describe=lambda: str(places()))  # fmt: skip
    # A watch saw the place change.
    events = stack.trainings.WatchTraining(pb.WatchTrainingRequest(id=trainings[4].id), timeout=5)
    seen = []
    try:
        for response in events:
            seen.append(response.event.queue_position)
            if response.event.queue_position == 3:
                break
    finally:
        events.cancel()
    assert 5 in seen
    assert seen[-1] == 3


def test_a_missing_queue_is_named_and_the_training_runs_once_it_exists(
    kueue: Kueue, stack: Stack
) -> None:
    name = f"later-{uuid.uuid4().hex[:6]}"
    training = create(stack, name)
    unavailable = standing(stack, training.id, "QueueUnavailable")
    assert unavailable.phase == pb.PHASE_QUEUED
    assert f"queue {name} is not available" in unavailable.message
    assert f"LocalQueue {name} doesn't exist" in unavailable.message
    objects = [cluster_queue(name, gpus=1), local_queue(name, stack.namespace, name)]
    with applied(kueue.kube, objects):
        stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED})
        drain(kueue.kube, stack.namespace)


def test_a_missing_priority_class_is_named_and_the_training_runs_once_it_exists(
    kueue: Kueue, stack: Stack, team: str
) -> None:
    # Kueue makes no Workload for a Job whose WorkloadPriorityClass is
    # missing, and says so only in its own log.
    name = f"urgent-{uuid.uuid4().hex[:6]}"
    give_gpus(kueue, team, 1)
    training = create(stack, team, priority=name)
    unavailable = standing(stack, training.id, "PriorityUnavailable")
    assert unavailable.phase == pb.PHASE_QUEUED
    assert f"priority {name} does not exist (no WorkloadPriorityClass {name})" in (
        unavailable.message
    )
    with applied(kueue.kube, [priority_class(name, 500)]):
        stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED}, timeout=120)
        drain(kueue.kube, stack.namespace)


def test_hold_takes_a_training_out_of_its_queue_and_release_puts_it_back(
    kueue: Kueue, stack: Stack, team: str
) -> None:
    training = create(stack, team)
    standing(stack, training.id, "WaitingForQuota")
    stack.trainings.HoldTraining(pb.HoldTrainingRequest(id=training.id), timeout=10)
    held = standing(stack, training.id, "Held")
    assert held.phase == pb.PHASE_SUSPENDED
    assert held.held
    wait_for(
        "its Workload to be inactive",
        lambda: [w for w in workloads(kueue, stack) if w["spec"].get("active") is False],
    )
    # Out of the queue: quota given now goes to nobody.
    give_gpus(kueue, team, 1)
    assert stack.get(training.id).phase == pb.PHASE_SUSPENDED
    stack.trainings.ReleaseTraining(pb.ReleaseTrainingRequest(id=training.id), timeout=10)
    done = stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED})
    assert not done.held


def test_a_cancel_while_queued_or_held_removes_the_job_and_frees_the_queue(
    kueue: Kueue, stack: Stack, team: str
) -> None:
    queued, held = create(stack, team), create(stack, team)
    for training in (queued, held):
        standing(stack, training.id, "WaitingForQuota")
    stack.trainings.HoldTraining(pb.HoldTrainingRequest(id=held.id), timeout=10)
    standing(stack, held.id, "Held")
    for training in (queued, held):
        stack.cancel(training.id)
        stack.wait_for_phase(training.id, {pb.PHASE_CANCELED})
    wait_for("their Jobs and Workloads to be gone", lambda: not workloads(kueue, stack))
    wait_for(
        f"ClusterQueue {team} to count no workload",
        lambda: (
            cluster_queue_status(kueue, team).get("pendingWorkloads", 0) == 0
            and cluster_queue_status(kueue, team).get("reservingWorkloads", 0) == 0
        ),
        describe=lambda: str(cluster_queue_status(kueue, team)),
    )


def test_without_queues_a_queue_is_refused_naming_the_field(
    cluster: Cluster, tmp_path: Path
) -> None:
    with running_stack(cluster, tmp_path) as plain:
        with pytest.raises(grpc.RpcError) as err:
            create(plain, "team-a")
        error: Any = err.value  # a grpc.Call as well
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error) == ["spec.queue"]
        training = plain.create(lora_spec())
        done = plain.wait_for_phase(training.id, {pb.PHASE_COMPLETED})
        assert (done.queue, done.queue_position) == ("", 0)


def workloads(kueue: Kueue, stack: Stack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.CustomObjectsApi(kueue.kube).list_namespaced_custom_object(
        GROUP, VERSION, stack.namespace, "workloads"
    )["items"]
    return found


def test_a_four_node_training_waits_as_a_whole_until_all_four_nodes_gpus_are_free(
    kueue: Kueue, stack: Stack, team: str
) -> None:
    # Two GPUs a node, so that the nodes need not be empty of others' pods.
    give_gpus(kueue, team, 6)  # three nodes' GPUs
    spec = lora_spec()
    spec.resources.nodes, spec.resources.gpus, spec.queue = 4, 2, team
    training = stack.create(spec)
    waiting = standing(stack, training.id, "WaitingForQuota", "insufficient quota")
    # One Workload for the gang: no rank runs while the four can not.
    assert "current podset request (8) > maximum capacity (6)" in waiting.message
    assert stack.pods_of(waiting.job_name) == []
    workloads: Any = client.CustomObjectsApi(kueue.kube).list_namespaced_custom_object(
        GROUP, VERSION, stack.namespace, "workloads"
    )
    (workload,) = [
        w
        for w in workloads["items"]
        if w["metadata"]["ownerReferences"][0]["name"] == waiting.job_name
    ]
    assert [p["count"] for p in workload["spec"]["podSets"]] == [4]

    give_gpus(kueue, team, 8)  # the fourth node's frees
    done = stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED, pb.PHASE_FAILED}, timeout=90)
    assert done.phase == pb.PHASE_COMPLETED
    assert len(stack.pods_of(waiting.job_name)) == 4
