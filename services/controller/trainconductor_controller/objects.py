"""The Kubernetes objects the controller keeps, typed: a Job, a pod, a
refusal (a FailedCreate event on a Job), a headless Service of a multi-node
Job and Kueue's Workload of a Job,
slimmed to what plan(), observe() and standing() read, so that 10,000 Jobs
fit in little memory and mypy checks every read.

Fields are named as the API server names them. Every shape is
`total=False`: the API server leaves out what is unset (a new Job has no
status conditions, a pending pod no node), and the tests build partial
objects.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

from trainconductor_controller.names import (
    ATTEMPT_ANNOTATION,
    DEADLINE_FROM_ANNOTATION,
    JOB_UID_LABEL,
)

# An object as the API server sent it (JSON), before it is slimmed.
RawObject = dict[str, Any]


class OwnerReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str


class ObjectMeta(TypedDict, total=False):
    name: str
    uid: str
    labels: dict[str, str]
    # A Job's only: DEADLINE_FROM_ANNOTATION, when the controller set its
    # deadline, and ATTEMPT_ANNOTATION (absent on Jobs made before attempts).
    annotations: dict[str, str]
    creationTimestamp: str
    deletionTimestamp: str
    # A Workload's only: the Job it was made for.
    ownerReferences: list[OwnerReference]


class JobCondition(TypedDict, total=False):
    type: str  # "Complete", "Failed", "FailureTarget", "SuccessCriteriaMet", "Suspended"
    status: str  # "True", "False", "Unknown"
    reason: str
    message: str
    lastTransitionTime: str


class JobSpec(TypedDict, total=False):
    activeDeadlineSeconds: int
    suspend: bool


class JobStatus(TypedDict, total=False):
    conditions: list[JobCondition]
    startTime: str
    completionTime: str
    active: int
    succeeded: int
    failed: int


class Job(TypedDict, total=False):
    metadata: ObjectMeta
    spec: JobSpec
    status: JobStatus


class ContainerStateRunning(TypedDict, total=False):
    startedAt: str


class ContainerStateTerminated(TypedDict, total=False):
    exitCode: int
    reason: str
    message: str
    startedAt: str
    finishedAt: str


class ContainerStateWaiting(TypedDict, total=False):
    reason: str
    message: str


class ContainerState(TypedDict, total=False):
    running: ContainerStateRunning
    terminated: ContainerStateTerminated
    waiting: ContainerStateWaiting


class ContainerStatus(TypedDict, total=False):
    name: str
    state: ContainerState


class PodCondition(TypedDict, total=False):
    type: str  # "PodScheduled", "DisruptionTarget", ...
    status: str
    reason: str
    message: str


class PodSpec(TypedDict, total=False):
    nodeName: str


class PodStatus(TypedDict, total=False):
    phase: str  # "Pending", "Running", "Succeeded", "Failed", "Unknown"
    reason: str
    message: str
    conditions: list[PodCondition]
    containerStatuses: list[ContainerStatus]


class Pod(TypedDict, total=False):
    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus


class Service(TypedDict, total=False):
    """The headless Service of a multi-node attempt: its name is all the
    controller reads (whether the attempt's Service exists)."""

    metadata: ObjectMeta


class Refusal(TypedDict, total=False):
    """A FailedCreate event on a Job: a quota, a LimitRange or an admission
    policy refused the Job's pod."""

    metadata: ObjectMeta
    message: str
    # When it was last said (a repeated event counts up in one object).
    lastTimestamp: str


class WorkloadCondition(TypedDict, total=False):
    # "QuotaReserved", "Admitted", "Evicted", "Preempted", "Requeued",
    # "Finished", "PodsReady", ...
    type: str
    status: str
    reason: str
    message: str
    lastTransitionTime: str


class RequeueState(TypedDict, total=False):
    count: int
    # When a Workload evicted and requeued with a backoff is queued again.
    requeueAt: str


class WorkloadAdmission(TypedDict, total=False):
    clusterQueue: str


class WorkloadSpec(TypedDict, total=False):
    # False: taken out of its queue (deactivated), as `kueuectl stop workload` does.
    active: bool
    queueName: str


class WorkloadStatus(TypedDict, total=False):
    conditions: list[WorkloadCondition]
    requeueState: RequeueState
    admission: WorkloadAdmission


class Workload(TypedDict, total=False):
    """Kueue's Workload of a Job (kueue.x-k8s.io/v1beta2)."""

    metadata: ObjectMeta
    spec: WorkloadSpec
    status: WorkloadStatus


# Not the resourceVersion: nothing reads it, and without it an update that
# changed nothing kept (a finalizer, an annotation) leaves the slim object
# equal to the one before (informer.py).
_KEPT_METADATA = ("name", "labels", "deletionTimestamp", "creationTimestamp")


def _slim_metadata(obj: RawObject) -> ObjectMeta:
    metadata = obj.get("metadata", {})
    return cast(ObjectMeta, {k: metadata[k] for k in _KEPT_METADATA if k in metadata})


def slim_job(obj: RawObject) -> Job:
    """Keeps names, its uid (its Workload names it), deletion, status, the
    deadline (and the startTime it was counted from) and whether the Job is
    to be suspended."""
    job: Job = {"metadata": _slim_metadata(obj), "status": obj.get("status", {})}
    uid = obj.get("metadata", {}).get("uid")
    if uid:
        job["metadata"]["uid"] = uid
    spec = obj.get("spec", {})
    kept = cast(JobSpec, {k: spec[k] for k in ("activeDeadlineSeconds", "suspend") if spec.get(k)})
    if kept:
        job["spec"] = kept
    annotations = obj.get("metadata", {}).get("annotations") or {}
    kept_annotations = {
        k: annotations[k]
        for k in (DEADLINE_FROM_ANNOTATION, ATTEMPT_ANNOTATION)
        if k in annotations
    }
    if kept_annotations:
        job["metadata"]["annotations"] = kept_annotations
    return job


def slim_workload(obj: RawObject) -> Workload:
    """Keeps its name, the Job it was made for (the job-uid label and the
    owner), whether it is active, its queue, and its status: conditions
    (messages cut short), requeue state and the ClusterQueue it was admitted to."""
    metadata = obj.get("metadata", {})
    kept: ObjectMeta = {
        "name": metadata.get("name", ""),
        "ownerReferences": [
            {"kind": o.get("kind", ""), "name": o.get("name", ""), "uid": o.get("uid", "")}
            for o in metadata.get("ownerReferences") or []
            if o.get("kind") == "Job"
        ],
    }
    job_uid = (metadata.get("labels") or {}).get(JOB_UID_LABEL)
    if job_uid:
        kept["labels"] = {JOB_UID_LABEL: job_uid}
    if metadata.get("deletionTimestamp"):
        kept["deletionTimestamp"] = metadata["deletionTimestamp"]
    spec = obj.get("spec", {})
    workload: Workload = {
        "metadata": kept,
        "spec": {
            "active": spec.get("active", True) is not False,
            "queueName": spec.get("queueName", ""),
        },
    }
    status = obj.get("status", {})
    slim_status: WorkloadStatus = {
        "conditions": [
            cast(WorkloadCondition, {**c, "message": str(c.get("message") or "")[:1024]})
            for c in status.get("conditions") or []
        ]
    }
    if status.get("requeueState"):
        slim_status["requeueState"] = status["requeueState"]
    cluster_queue = (status.get("admission") or {}).get("clusterQueue")
    if cluster_queue:
        slim_status["admission"] = {"clusterQueue": cluster_queue}
    workload["status"] = slim_status
    return workload


def slim_pod(obj: RawObject) -> Pod:
    """Keeps names, deletion, status and the pod's node."""
    pod: Pod = {"metadata": _slim_metadata(obj), "status": obj.get("status", {})}
    node = obj.get("spec", {}).get("nodeName")
    if node:
        pod["spec"] = {"nodeName": node}
    return pod


def slim_service(obj: RawObject) -> Service:
    """Keeps its name (and labels, deletion)."""
    return {"metadata": _slim_metadata(obj)}


def slim_refusal(event: RawObject) -> Refusal:
    """Keeps what the event said, and when it last said it."""
    metadata = event.get("metadata", {})
    last = (
        (event.get("series") or {}).get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or metadata.get("creationTimestamp")
        or ""
    )
    return {
        "metadata": cast(ObjectMeta, {"name": metadata["name"]} if "name" in metadata else {}),
        "message": str(event.get("message") or "")[:1024],
        "lastTimestamp": last,
    }
