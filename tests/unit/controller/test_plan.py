"""plan(): every phase and every race, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.controller.factories import (
    NAME,
    NOW,
    failed_pod,
    job,
    pod,
    record,
    unschedulable_pod,
)
from trainconductor_controller.names import DEADLINE_FROM_ANNOTATION
from trainconductor_controller.objects import Job, Pod, Refusal
from trainconductor_controller.plan import CreateJob, DeleteJob, SetDeadline, WriteStatus, plan
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingRecord


def summary(actions: list[Any]) -> list[str]:
    """Actions as short words: 'create', 'delete:why', 'status:PHASE/Reason'."""
    words = []
    for action in actions:
        if isinstance(action, CreateJob):
            words.append("create")
        elif isinstance(action, DeleteJob):
            words.append(f"delete:{action.why}")
        elif isinstance(action, WriteStatus):
            words.append(f"status:{action.update.phase}/{action.update.reason}")
    return words


CANCELED = record(Phase.QUEUED, cancel_requested=True, generation=2)
KEEP = 3_600_000  # a finished training's Job is kept an hour
COMPLETE = ("Complete", "CompletionsReached", "")


@pytest.mark.parametrize(
    ("desired", "observed_job", "pods", "expected"),
    [
        pytest.param(record(), None, [], ["create", "status:QUEUED/JobCreated"],
                     id="a new training gets its Job"),
        pytest.param(record(Phase.QUEUED), job(), [unschedulable_pod()],
                     ["status:QUEUED/Unschedulable"],
                     id="an unschedulable pod says why the training waits"),
        pytest.param(record(Phase.QUEUED), job(active=1), [pod("Running")],
                     ["status:RUNNING/Running"], id="a running pod makes it RUNNING"),
        pytest.param(record(Phase.RUNNING), job(COMPLETE, succeeded=1), [],
                     ["status:COMPLETED/Completed"], id="a complete Job completes it"),
        pytest.param(record(Phase.RUNNING),
                     job(("Failed", "BackoffLimitExceeded", "backoff"), failed=1),
                     [failed_pod(3, "Error")], ["status:FAILED/BackoffLimitExceeded"],
                     id="a failed Job fails it with the Job's reason"),
        pytest.param(record(Phase.RUNNING),
                     job(("Failed", "DeadlineExceeded", "too slow"), failed=1), [],
                     ["status:FAILED/DeadlineExceeded"], id="an exceeded deadline fails it"),
        pytest.param(record(Phase.RUNNING), job(("Suspended", "JobSuspended", "")), [],
                     ["status:SUSPENDED/Suspended"], id="a suspended Job suspends it"),
        pytest.param(record(cancel_requested=True, generation=2), None, [],
                     ["status:CANCELED/Canceled"], id="cancel before the Job exists"),
        pytest.param(CANCELED, job(), [unschedulable_pod()],
                     ["delete:canceled", "status:CANCELED/Canceled"], id="cancel while QUEUED"),
        pytest.param(record(Phase.RUNNING, cancel_requested=True, generation=2),
                     job(active=1), [pod("Running")],
                     ["delete:canceled", "status:CANCELED/Canceled"], id="cancel while RUNNING"),
        pytest.param(CANCELED, job(deleting=True), [], ["status:CANCELED/Canceled"],
                     id="cancel while the Job is already being deleted"),
        pytest.param(record(Phase.RUNNING, cancel_requested=True, generation=2),
                     job(COMPLETE, succeeded=1), [], ["status:COMPLETED/Completed"],
                     id="a Job that finished before the cancel stays finished"),
        pytest.param(record(Phase.CANCELED), job(), [], ["delete:canceled"],
                     id="a canceled training's Job that is still there is deleted"),
        pytest.param(record(Phase.COMPLETED), None, [], [],
                     id="a finished training whose Job is gone is left alone"),
        pytest.param(record(Phase.FAILED), job(COMPLETE), [], [],
                     id="a final phase never changes"),
        pytest.param(record(Phase.COMPLETED, finish_time_ms=NOW - KEEP + 1000), job(COMPLETE),
                     [], [], id="a finished training's Job is kept a while"),
        pytest.param(record(Phase.COMPLETED, finish_time_ms=NOW - KEEP), job(COMPLETE), [],
                     ["delete:finished"], id="then the controller deletes it"),
        pytest.param(record(Phase.FAILED, finish_time_ms=NOW - KEEP), job(deleting=True), [],
                     [], id="a finished training's Job already being deleted"),
        pytest.param(record(Phase.COMPLETED, finish_time_ms=NOW - KEEP), None, [], [],
                     id="a finished training's Job already gone"),
        pytest.param(None, job(), [], ["delete:orphan"], id="a Job without a record is deleted"),
        pytest.param(None, job(deleting=True), [], [], id="an orphan already being deleted"),
        pytest.param(None, None, [], [], id="neither record nor Job"),
        pytest.param(record(Phase.RUNNING), None, [], ["status:FAILED/JobDeleted"],
                     id="a Job deleted by someone else fails the training"),
        pytest.param(record(Phase.RUNNING), job(deleting=True), [pod("Running")], [],
                     id="a Job being deleted by someone else is waited for"),
        pytest.param(record(Phase.RUNNING, reason="Running", message="running on kwok-gpu-0",
                            attempts=1, start_time_ms=1_800_000_000_000),
                     job(active=1), [pod("Running")], [],
                     id="nothing to do when the record already says what is seen"),
    ],
)  # fmt: skip
def test_plan(
    desired: TrainingRecord | None,
    observed_job: Job | None,
    pods: list[Pod],
    expected: list[str],
) -> None:
    assert summary(plan(desired, observed_job, pods, NOW, keep_finished_ms=KEEP)) == expected


def test_status_is_written_as_of_the_generation_acted_on() -> None:
    actions = plan(CANCELED, job(), [], NOW, keep_finished_ms=KEEP)
    written = [a for a in actions if isinstance(a, WriteStatus)]
    assert written[0].update.observed_generation == 2
    assert written[0].update.finish_time_ms == NOW


def test_an_older_observed_generation_is_brought_up_to_date() -> None:
    stale = record(
        Phase.RUNNING,
        reason="Running",
        message="running on kwok-gpu-0",
        attempts=1,
        start_time_ms=1_800_000_000_000,
        generation=3,
        observed_generation=2,
    )
    actions = plan(stale, job(active=1), [pod("Running")], NOW, keep_finished_ms=KEEP)
    assert [a.update.observed_generation for a in actions if isinstance(a, WriteStatus)] == [3]


def test_the_created_status_names_the_job() -> None:
    actions = plan(record(), None, [], NOW, keep_finished_ms=KEEP)
    written = [a for a in actions if isinstance(a, WriteStatus)]
    assert written[0].update.job_name == NAME


def _job_with_deadline(seconds: int, counted_from: str | None, started: str) -> Job:
    deadlined = job(active=1)
    deadlined["spec"] = {"activeDeadlineSeconds": seconds}
    deadlined["status"]["startTime"] = started
    if counted_from:
        deadlined["metadata"]["annotations"] = {DEADLINE_FROM_ANNOTATION: counted_from}
    return deadlined


JOB_START = "2027-01-15T08:00:00Z"  # job()'s startTime
RESUMED = "2027-01-15T09:00:00Z"  # the startTime Kubernetes gives it on resuming


@pytest.mark.parametrize(
    ("observed_job", "pods", "deadline", "expected"),
    [
        # The Job started at 08:00:00; its trainer at 08:30:01, after half
        # an hour waiting for a node: the Job's deadline adds the wait, and
        # the second its startedAt may have been cut by.
        pytest.param(job(active=1), [pod("Running", started="2027-01-15T08:30:01Z")], 60,
                     [SetDeadline(NAME, 1801 + 1 + 60, JOB_START)],
                     id="set once the trainer runs, wait added"),
        pytest.param(job(active=1), [unschedulable_pod()], 60, [],
                     id="none while it waits, however long"),
        pytest.param(_job_with_deadline(1861, JOB_START, JOB_START), [pod("Running")], 60, [],
                     id="set already"),
        pytest.param(_job_with_deadline(60, None, JOB_START), [pod("Running")], 60, [],
                     id="set at creation by an earlier release: left alone"),
        pytest.param(_job_with_deadline(1861, JOB_START, RESUMED),
                     [pod("Failed", started="2027-01-15T08:30:01Z"), unschedulable_pod()], 60,
                     [SetDeadline(NAME, None, RESUMED)],
                     id="resumed: taken off while it waits again"),
        pytest.param(_job_with_deadline(1861, JOB_START, RESUMED),
                     [pod("Running", started="2027-01-15T08:30:01Z"),  # lingering
                      pod("Running", started="2027-01-15T09:00:05Z",
                          created="2027-01-15T09:00:01Z")], 60,
                     [SetDeadline(NAME, 5 + 1 + 60, RESUMED)],
                     id="resumed: set again once the trainer runs again"),
        pytest.param(job(active=1), [pod("Running", started="2027-01-15T07:59:58Z")], 60,
                     [SetDeadline(NAME, 0 + 1 + 60, JOB_START)],
                     id="a node's clock behind the control plane's: no wait, not less"),
        pytest.param(job(active=1), [pod("Running")], 0, [], id="no deadline asked"),
    ],
)  # fmt: skip
def test_a_deadline_counts_from_the_trainers_start(
    observed_job: Job, pods: list[Pod], deadline: int, expected: list[Any]
) -> None:
    actions = plan(
        record(Phase.QUEUED), observed_job, pods, NOW, keep_finished_ms=KEEP,
        deadline_seconds=deadline,
    )  # fmt: skip
    assert [a for a in actions if isinstance(a, SetDeadline)] == expected


def test_refusals_from_before_the_trainer_ran_are_history() -> None:
    """At its deadline Kubernetes deletes the pod a moment before it marks
    the Job failed: the quota that once refused the pod is not why."""
    ran = record(Phase.RUNNING, start_time_ms=NOW)  # its trainer started at 08:00:00
    old: Refusal = {
        "metadata": {"name": "e"},
        "message": "exceeded quota",
        "lastTimestamp": "2027-01-15T07:59:30Z",
    }
    actions = plan(ran, job(active=1), [], NOW, keep_finished_ms=KEEP, refusals=[old])
    assert summary(actions) == ["status:QUEUED/JobCreated"]
    new: Refusal = {**old, "lastTimestamp": "2027-01-15T08:00:01Z"}  # after it ran
    actions = plan(ran, job(active=1), [], NOW, keep_finished_ms=KEEP, refusals=[new])
    assert summary(actions) == ["status:QUEUED/PodRefused"]
