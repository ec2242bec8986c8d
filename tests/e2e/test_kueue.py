"""A real Kueue beside the local control plane, as a client of Kueue uses it
without Train Conductor: Jobs labelled with a LocalQueue are held suspended
until Kueue admits them, wait with Kueue's own reason when the quota is
spent, have a place in their queue that the visibility API tells, and wait
as Inadmissible when their LocalQueue does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client

from devstack.kueue import Kueue
from devstack.queues import (
    GPU_NODE_LABEL,
    Object,
    condition,
    pending_workloads,
    queued_job,
    workload_of_job,
)
from devstack.waiting import wait_for

HOUR = "1h"  # how long a pod that must hold its quota runs on kwok


@dataclass(frozen=True)
class Created:
    """A Job as its create answered."""

    name: str
    uid: str
    suspended: bool


def create(kube: client.ApiClient, namespace: str, job: Object) -> Created:
    body = client.V1Job.from_dict(job)
    assert body is not None
    created = client.BatchV1Api(kube).create_namespaced_job(namespace, body)
    return Created(
        str(created.metadata.name), str(created.metadata.uid), bool(created.spec.suspend)
    )


def workload(kube: client.ApiClient, namespace: str, job: Created) -> Object:
    found: Object = wait_for(
        f"Kueue to make the Workload of Job {job.name}",
        lambda: workload_of_job(kube, namespace, job.uid),
    )
    return found


def wait_for_condition(
    kube: client.ApiClient, namespace: str, job: Created, kind: str, status: str
) -> Object:
    """The Workload's condition `kind` once it has `status`."""

    def seen() -> Object | None:
        found = workload_of_job(kube, namespace, job.uid)
        c = condition(found, kind) if found else None
        return c if c and c["status"] == status else None

    result: Object = wait_for(
        f"the Workload of Job {job.name} to have {kind}={status}",
        seen,
        describe=lambda: str(workload_of_job(kube, namespace, job.uid)),
    )
    return result


def suspended(kube: client.ApiClient, namespace: str, job: Created) -> bool:
    return bool(client.BatchV1Api(kube).read_namespaced_job(job.name, namespace).spec.suspend)


def test_a_job_created_running_is_held_suspended_until_kueue_admits_it_then_its_pod_runs(
    kueue: Kueue, namespace: str, queue: str
) -> None:
    kube = kueue.kube
    job = create(kube, namespace, queued_job("lora", queue, gpus=2))

    # Kueue's webhook suspended it in the create itself: no pod could start
    # before admission.
    assert job.suspended
    admitted = wait_for_condition(kube, namespace, job, "Admitted", "True")
    assert admitted["reason"] == "Admitted"
    wl = workload(kube, namespace, job)
    assert wl["status"]["admission"]["clusterQueue"] == queue

    wait_for("Kueue to unsuspend the admitted Job", lambda: not suspended(kube, namespace, job))
    core = client.CoreV1Api(kube)
    pod = wait_for(
        "the Job's pod to run on a kwok GPU node",
        lambda: next(
            (
                p
                for p in core.list_namespaced_pod(
                    namespace, label_selector=f"job-name={job.name}"
                ).items
                if p.status.phase in ("Running", "Succeeded")
            ),
            None,
        ),
    )
    # The flavor's node labels, put on the pod by Kueue at admission.
    assert pod.spec.node_selector == {GPU_NODE_LABEL: "true"}
    assert pod.spec.node_name.startswith("kwok-gpu-")


def test_a_job_beyond_the_quota_waits_with_kueues_reason(
    kueue: Kueue, namespace: str, queue: str
) -> None:
    kube = kueue.kube
    running = create(kube, namespace, queued_job("first", queue, gpus=2, run_duration=HOUR))
    wait_for_condition(kube, namespace, running, "Admitted", "True")

    waiting = create(kube, namespace, queued_job("second", queue, gpus=2))

    reserved = wait_for_condition(kube, namespace, waiting, "QuotaReserved", "False")
    assert reserved["reason"] == "Pending"
    assert (
        "insufficient unused quota for nvidia.com/gpu in flavor gpu, 2 more needed"
        in reserved["message"]
    ), reserved["message"]
    assert suspended(kube, namespace, waiting)


def test_the_visibility_api_tells_each_waiting_workload_its_place_from_zero(
    kueue: Kueue, namespace: str, queue: str, priorities: dict[str, str]
) -> None:
    """The order is made by priority: Kueue orders equal priorities by
    creation time in whole seconds, then by uid."""
    kube = kueue.kube
    running = create(
        kube,
        namespace,
        queued_job("running", queue, gpus=2, run_duration=HOUR, priority=priorities["top"]),
    )
    wait_for_condition(kube, namespace, running, "Admitted", "True")
    waiting = {
        rank: create(kube, namespace, queued_job(rank, queue, gpus=2, priority=priorities[rank]))
        for rank in ("low", "high", "medium")
    }
    names = {
        rank: workload(kube, namespace, job)["metadata"]["name"] for rank, job in waiting.items()
    }

    def places() -> list[tuple[str, int, int]]:
        return [
            (w["metadata"]["name"], w["positionInLocalQueue"], w["positionInClusterQueue"])
            for w in pending_workloads(kube, namespace, queue)
        ]

    expected = [(names[rank], i, i) for i, rank in enumerate(("high", "medium", "low"))]
    seen = wait_for(
        "the visibility API to list the three waiting Workloads by priority",
        lambda: (p := places()) == expected and p,
        describe=lambda: str(places()),
    )
    assert seen == expected
    item: Any = pending_workloads(kube, namespace, queue)[0]
    assert item["localQueueName"] == queue
    assert item["priority"] == 300


def test_a_job_naming_a_missing_local_queue_is_inadmissible(
    kueue: Kueue, kueue_namespace: str
) -> None:
    kube, namespace = kueue.kube, kueue_namespace
    job = create(kube, namespace, queued_job("lost", "no-such-queue", gpus=1))

    assert job.suspended
    reserved = wait_for_condition(kube, namespace, job, "QuotaReserved", "False")
    assert reserved["reason"] == "Inadmissible"
    assert "no-such-queue" in reserved["message"], reserved["message"]
