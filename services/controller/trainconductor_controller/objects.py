"""The Kubernetes objects the controller keeps, typed: a Job, a pod and a
refusal (a FailedCreate event on a Job) slimmed to what plan() and
observe() read, so that 10,000 Jobs fit in little memory and mypy checks
every read.

Fields are named as the API server names them. Every shape is
`total=False`: the API server leaves out what is unset (a new Job has no
status conditions, a pending pod no node), and the tests build partial
objects.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

from trainconductor_controller.names import DEADLINE_FROM_ANNOTATION

# An object as the API server sent it (JSON), before it is slimmed.
RawObject = dict[str, Any]


class ObjectMeta(TypedDict, total=False):
    name: str
    labels: dict[str, str]
    # A Job's only: DEADLINE_FROM_ANNOTATION, when the controller set its deadline.
    annotations: dict[str, str]
    creationTimestamp: str
    deletionTimestamp: str
    resourceVersion: str


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


class Refusal(TypedDict, total=False):
    """A FailedCreate event on a Job: a quota, a LimitRange or an admission
    policy refused the Job's pod."""

    metadata: ObjectMeta
    message: str
    # When it was last said (a repeated event counts up in one object).
    lastTimestamp: str


_KEPT_METADATA = ("name", "labels", "deletionTimestamp", "creationTimestamp", "resourceVersion")


def _slim_metadata(obj: RawObject) -> ObjectMeta:
    metadata = obj.get("metadata", {})
    return cast(ObjectMeta, {k: metadata[k] for k in _KEPT_METADATA if k in metadata})


def slim_job(obj: RawObject) -> Job:
    """Keeps names, deletion, status, the deadline (and the startTime it
    was counted from) and whether the Job is to be suspended."""
    job: Job = {"metadata": _slim_metadata(obj), "status": obj.get("status", {})}
    spec = obj.get("spec", {})
    kept = cast(JobSpec, {k: spec[k] for k in ("activeDeadlineSeconds", "suspend") if spec.get(k)})
    if kept:
        job["spec"] = kept
    counted_from = obj.get("metadata", {}).get("annotations", {}).get(DEADLINE_FROM_ANNOTATION)
    if counted_from:
        job["metadata"]["annotations"] = {DEADLINE_FROM_ANNOTATION: counted_from}
    return job


def slim_pod(obj: RawObject) -> Pod:
    """Keeps names, deletion, status and the pod's node."""
    pod: Pod = {"metadata": _slim_metadata(obj), "status": obj.get("status", {})}
    node = obj.get("spec", {}).get("nodeName")
    if node:
        pod["spec"] = {"nodeName": node}
    return pod


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
        "metadata": cast(
            ObjectMeta, {k: metadata[k] for k in ("name", "resourceVersion") if k in metadata}
        ),
        "message": str(event.get("message") or "")[:1024],
        "lastTimestamp": last,
    }
