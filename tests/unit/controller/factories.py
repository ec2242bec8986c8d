"""Records, Jobs and pods as the controller sees them, for table tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from devstack.specs import lora_spec
from trainconductor_controller.names import job_name
from trainconductor_controller.objects import Job, JobStatus, ObjectMeta, Pod, PodStatus
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingRecord

ID = "0193a1b2c3d4e5f60718"
NAME = job_name(ID)
NOW = 1_800_000_000_000


def record(phase: Phase = Phase.PENDING, **changes: Any) -> TrainingRecord:
    base = TrainingRecord(
        id=ID,
        spec=lora_spec(),
        owner="ada",
        phase=phase,
        reason="",
        message="",
        generation=1,
        observed_generation=0 if phase == Phase.PENDING else 1,
        cancel_requested=False,
        create_time_ms=NOW - 60_000,
        job_name="" if phase == Phase.PENDING else NAME,
        attempts=0 if phase == Phase.PENDING else 1,
    )
    return replace(base, **changes)


def job(*conditions: tuple[str, str, str], deleting: bool = False, **status: Any) -> Job:
    metadata: ObjectMeta = {"name": NAME}
    if deleting:
        metadata["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    return {
        "metadata": metadata,
        "status": cast(
            JobStatus,
            {
                "startTime": "2027-01-15T08:00:00Z",
                **status,
                "conditions": [
                    {
                        "type": kind,
                        "status": "True",
                        "reason": reason,
                        "message": message,
                        "lastTransitionTime": "2027-01-15T08:05:00Z",
                    }
                    for kind, reason, message in conditions
                ],
            },
        ),
    }


STARTED = "2027-01-15T08:00:00Z"  # NOW: when a running pod's trainer started


def pod(
    phase: str,
    started: str = STARTED,
    created: str = "2027-01-15T08:00:00Z",
    **status: Any,
) -> Pod:
    """A pod of the training's Job, made at `created`; a running one's
    trainer started at `started`."""
    if phase == "Running" and "containerStatuses" not in status:
        status["containerStatuses"] = [
            {"name": "trainer", "state": {"running": {"startedAt": started}}}
        ]
    return {
        "metadata": {"name": f"{NAME}-abcde", "creationTimestamp": created},
        "spec": {"nodeName": "kwok-gpu-0"} if phase != "Pending" else {},
        "status": cast(PodStatus, {"phase": phase, **status}),
    }


def unschedulable_pod() -> Pod:
    return pod(
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
            }
        ],
    )


def image_pull_pod() -> Pod:
    return pod(
        "Pending",
        containerStatuses=[
            {"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}
        ],
    )


def failed_pod(exit_code: int, reason: str, message: str = "") -> Pod:
    terminated = {"exitCode": exit_code, "reason": reason, "message": message}
    return pod("Failed", containerStatuses=[{"state": {"terminated": terminated}}])
