"""Kueue's objects as the local stack uses them: the example setup of
`make up` (a ResourceFlavor for the GPU nodes, two ClusterQueues in a cohort,
their LocalQueues, two priorities), Jobs for a queue as a client of Kueue
makes them, and reading back what Kueue made: Workloads, and positions from
its visibility API. Kueue itself is run by devstack/kueue.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NotRequired, TypedDict

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack.stack import KWOK_TOLERATION
from devstack.waiting import wait_for

GROUP = "kueue.x-k8s.io"
VERSION = "v1beta2"
VISIBILITY_GROUP = "visibility.kueue.x-k8s.io"
# The labels a Job is queued by, and the one Kueue puts on the Workload it
# makes for a Job (the Job's uid).
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
GPU = "nvidia.com/gpu"
GPU_NODE_LABEL = "trainconductor.dev/gpu"
FIELD_MANAGER = "devstack"
PLURALS = {
    "ResourceFlavor": "resourceflavors",
    "ClusterQueue": "clusterqueues",
    "LocalQueue": "localqueues",
    "WorkloadPriorityClass": "workloadpriorityclasses",
    "Workload": "workloads",
}
# The example setup of `make up`.
COHORT = "research"
TEAMS = ("team-a", "team-b")
PRIORITIES = {"high": 1000, "low": 100}

Object = dict[str, Any]


def get_json(kube: client.ApiClient, path: str, accept: str = "application/json") -> Any:
    """GET `path` of the API server as JSON: for what the typed client has no
    method for (an aggregated API) or would be slow to build models of."""
    method, url, headers, _, _ = kube.param_serialize(
        "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
    )
    response = kube.call_api(method, url, headers, _request_timeout=10)
    if not 200 <= response.status < 300:
        response.data = response.response.data
        raise ApiException(http_resp=response)
    return json.loads(response.response.data)


def resource_flavor(name: str = "gpu") -> Object:
    """The GPU nodes. Every node of the local control plane is kwok's and
    tainted, so the flavor also tolerates that taint: a Job admitted to it
    can run there even if it was made without the toleration."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResourceFlavor",
        "metadata": {"name": name},
        "spec": {"nodeLabels": {GPU_NODE_LABEL: "true"}, "tolerations": KWOK_TOLERATION},
    }


def cluster_queue(
    name: str,
    *,
    gpus: int,
    cpu: str = "32",
    memory: str = "256Gi",
    cohort: str | None = None,
    flavor: str = "gpu",
) -> Object:
    """A ClusterQueue for every namespace, in submission order (StrictFIFO),
    that may borrow without limit from its cohort and takes back what it lent
    (reclaimWithinCohort: Any) or makes room for higher priorities of its own."""
    spec: Object = {
        "namespaceSelector": {},
        "queueingStrategy": "StrictFIFO",
        "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory", GPU],
                "flavors": [
                    {
                        "name": flavor,
                        "resources": [
                            {"name": "cpu", "nominalQuota": cpu},
                            {"name": "memory", "nominalQuota": memory},
                            {"name": GPU, "nominalQuota": gpus},
                        ],
                    }
                ],
            }
        ],
    }
    if cohort is not None:
        spec["cohortName"] = cohort
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": spec,
    }


def local_queue(name: str, namespace: str, cluster_queue: str) -> Object:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LocalQueue",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterQueue": cluster_queue},
    }


def priority_class(name: str, value: int) -> Object:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkloadPriorityClass",
        "metadata": {"name": name},
        "value": value,
        "description": f"Trainings of {name} priority (example setup)",
    }


def example_queues(kube: client.ApiClient, namespace: str) -> list[Object]:
    """`make up`'s setup: a ResourceFlavor `gpu` for the GPU nodes, the
    ClusterQueues `team-a` and `team-b` (4 GPUs, 32 CPUs and 256Gi each, one
    node's worth) in the cohort `research`, a LocalQueue of each name in
    `namespace`, and the WorkloadPriorityClasses `high` and `low`. Applied
    server-side, so running it again changes nothing; returns them."""
    objects = [
        resource_flavor("gpu"),
        *(cluster_queue(team, gpus=4, cohort=COHORT) for team in TEAMS),
        *(local_queue(team, namespace, team) for team in TEAMS),
        *(priority_class(name, value) for name, value in PRIORITIES.items()),
    ]
    for obj in objects:
        apply(kube, obj)
    return objects


def apply(kube: client.ApiClient, obj: Object) -> None:
    """Server-side apply of one of Kueue's objects."""
    api = client.CustomObjectsApi(kube)
    group, version = obj["apiVersion"].split("/")
    plural = PLURALS[obj["kind"]]
    name = obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    options: dict[str, Any] = {
        "field_manager": FIELD_MANAGER,
        "force": True,
        "_content_type": "application/apply-patch+yaml",
    }
    if namespace:
        api.patch_namespaced_custom_object(group, version, namespace, plural, name, obj, **options)
    else:
        api.patch_cluster_custom_object(group, version, plural, name, obj, **options)


@contextmanager
def applied(kube: client.ApiClient, objects: list[Object]) -> Iterator[list[Object]]:
    """`objects` applied while the block runs; after it, deleted (in reverse)
    and waited for until gone: Kueue's finalizers are done only while Kueue
    runs, and a ClusterQueue in use goes only after its Workloads."""
    try:
        for obj in objects:
            apply(kube, obj)
        yield objects
    finally:
        for obj in reversed(objects):
            delete(kube, obj)
        for obj in objects:
            wait_until_gone(kube, obj)


def drain(kube: client.ApiClient, namespace: str) -> None:
    """Deletes the Jobs of `namespace` and waits until their Workloads are
    gone. A Workload that held quota keeps Kueue's finalizer until Kueue lets
    it go: a namespace deleted once Kueue has stopped would wait for ever."""
    client.BatchV1Api(kube).delete_collection_namespaced_job(
        namespace, propagation_policy="Background"
    )
    api = client.CustomObjectsApi(kube)
    wait_for(
        f"the Workloads of namespace {namespace} to be gone",
        lambda: (
            not api.list_namespaced_custom_object(GROUP, VERSION, namespace, "workloads")["items"]
        ),
    )


def wait_until_gone(kube: client.ApiClient, obj: Object) -> None:
    what = f"{obj['kind']} {obj['metadata']['name']} to be deleted"
    wait_for(what, lambda: not exists(kube, obj))


def exists(kube: client.ApiClient, obj: Object) -> bool:
    api = client.CustomObjectsApi(kube)
    group, version = obj["apiVersion"].split("/")
    plural = PLURALS[obj["kind"]]
    name = obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    try:
        if namespace:
            api.get_namespaced_custom_object(group, version, namespace, plural, name)
        else:
            api.get_cluster_custom_object(group, version, plural, name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def delete(kube: client.ApiClient, obj: Object) -> None:
    """Deletes one of Kueue's objects; gone already is fine."""
    api = client.CustomObjectsApi(kube)
    group, version = obj["apiVersion"].split("/")
    plural = PLURALS[obj["kind"]]
    name = obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    try:
        if namespace:
            api.delete_namespaced_custom_object(group, version, namespace, plural, name)
        else:
            api.delete_cluster_custom_object(group, version, plural, name)
    except ApiException as error:
        if error.status != 404:
            raise


def queued_job(
    name: str,
    queue: str,
    *,
    gpus: int = 0,
    cpu: str = "1",
    memory: str = "1Gi",
    priority: str | None = None,
    run_duration: str | None = None,
    tolerations: list[dict[str, str]] | None = None,
) -> Object:
    """A Job for the LocalQueue `queue`, as a client that uses Kueue directly
    makes it: created with `suspend: false`, which Kueue's webhook turns into
    `true` until it admits the Job. `run_duration` is how long its pod runs on
    a kwok node (the local control plane's stages)."""
    labels = {QUEUE_LABEL: queue}
    if priority is not None:
        labels[PRIORITY_LABEL] = priority
    requests = {"cpu": cpu, "memory": memory}
    if gpus:
        requests[GPU] = str(gpus)
    annotations = {"kwok.trainconductor.dev/run-duration": run_duration} if run_duration else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "suspend": False,
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": tolerations if tolerations is not None else KWOK_TOLERATION,
                    "containers": [
                        {
                            "name": "main",
                            "image": "example.com/trainer:1",
                            "resources": {"requests": requests, "limits": requests},
                        }
                    ],
                },
            },
        },
    }


# Reading what Kueue made


class WorkloadReference(TypedDict):
    name: str
    namespace: str
    ownerReferences: NotRequired[list[dict[str, Any]]]


class PendingWorkload(TypedDict):
    """One item of the visibility API's `pendingworkloads`."""

    metadata: WorkloadReference
    priority: int
    localQueueName: str
    positionInClusterQueue: int  # from 0
    positionInLocalQueue: int  # from 0


def pending_workloads_path(namespace: str, local_queue: str) -> str:
    return (
        f"/apis/{VISIBILITY_GROUP}/{VERSION}/namespaces/{namespace}"
        f"/localqueues/{local_queue}/pendingworkloads"
    )


def pending_workloads(
    kube: client.ApiClient, namespace: str, local_queue: str
) -> list[PendingWorkload]:
    """The Workloads waiting in a LocalQueue, head first, from Kueue's
    visibility API (an aggregated API the API server passes on to Kueue)."""
    found = get_json(kube, pending_workloads_path(namespace, local_queue))
    items: list[PendingWorkload] = found["items"]
    return items


def workload_of_job(kube: client.ApiClient, namespace: str, job_uid: str) -> Object | None:
    """The Workload Kueue made for a Job (by the label of the Job's uid)."""
    found = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "workloads", label_selector=f"{JOB_UID_LABEL}={job_uid}"
    )
    items: list[Object] = found["items"]
    return items[0] if items else None


def condition(obj: Object, kind: str) -> Object | None:
    """The status condition `kind` of one of Kueue's objects, if it has one."""
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == kind:
            found: Object = c
            return found
    return None
