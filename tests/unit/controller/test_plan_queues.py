"""plan() for a training in a Kueue queue: its Workload's word, its place,
its hold and release, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.controller.factories import NOW, job, pod, record
from tests.unit.controller.test_admission import (
    ADMITTED,
    EVICTED,
    PENDING,
    PREEMPTED,
    REQUEUED,
    RESERVED,
    workload,
)
from trainconductor_controller.objects import Job, Workload
from trainconductor_controller.plan import (
    CreateJob,
    DeleteJob,
    SetWorkloadActive,
    WriteStatus,
    plan,
)
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingRecord


def summary(actions: list[Any]) -> list[str]:
    words = []
    for action in actions:
        if isinstance(action, CreateJob):
            words.append("create")
        elif isinstance(action, DeleteJob):
            words.append(f"delete:{action.why}")
        elif isinstance(action, SetWorkloadActive):
            words.append(f"active:{action.active}")
        elif isinstance(action, WriteStatus):
            u = action.update
            words.append(
                f"status:{u.phase}/{u.reason}" + (f"#{u.queue_position}" * bool(u.queue_position))
            )
    return words


def queued(phase: Phase = Phase.QUEUED, **changes: Any) -> TrainingRecord:
    return record(phase, **{"queue": "team-a", "priority": "high", **changes})


def suspended_job(**status: Any) -> Job:
    made = job(**status)
    made["metadata"]["uid"] = "u-1"
    made["spec"] = {"suspend": True}
    del made["status"]["startTime"]
    return made


def resuming_job() -> Job:
    """Unsuspended by Kueue; the Job controller has not updated its status yet."""
    made = job(("Suspended", "JobSuspended", "Job suspended"))
    made["metadata"]["uid"] = "u-1"
    made["spec"] = {"suspend": False}
    del made["status"]["startTime"]
    return made


def running_job() -> Job:
    made = job(active=1)
    made["metadata"]["uid"] = "u-1"
    return made


HELD = queued(
    Phase.SUSPENDED,
    held=True,
    reason="Held",
    generation=2,
    observed_generation=2,
    message="held by its owner, out of queue team-a and holding no quota; release it to "
    "queue it again",
)


@pytest.mark.parametrize(
    ("desired", "observed_job", "pods", "wl", "position", "expected"),
    [
        pytest.param(queued(Phase.PENDING), None, [], None, 0,
                     ["create", "status:QUEUED/JobCreated"], id="a queued training's Job is made"),
        pytest.param(queued(), suspended_job(), [], workload(PENDING), 3,
                     ["status:QUEUED/WaitingForQuota#3"],
                     id="waiting for quota, third in its queue"),
        pytest.param(queued(reason="WaitingForQuota", queue_position=3,
                            message=PENDING["message"]),
                     suspended_job(), [], workload(PENDING), 2,
                     ["status:QUEUED/WaitingForQuota#2"], id="moved up: the new place is written"),
        pytest.param(queued(reason="WaitingForQuota", queue_position=2,
                            message=PENDING["message"]),
                     suspended_job(), [], workload(PENDING), 2, [],
                     id="the same place again: nothing written"),
        pytest.param(queued(), suspended_job(), [], None, 0,
                     ["status:QUEUED/WaitingForWorkload"],
                     id="its Workload not seen yet: waits for Kueue"),
        pytest.param(queued(reason="WaitingForQuota", queue_position=1),
                     resuming_job(), [], workload(RESERVED, ADMITTED), 1,
                     ["status:QUEUED/Admitted"],
                     id="admitted, its Job unsuspended and not yet seen so: it starts, "
                        "never SUSPENDED"),
        pytest.param(queued(reason="WaitingForQuota", queue_position=1),
                     running_job(), [pod("Running")], workload(RESERVED, ADMITTED), 1,
                     ["status:RUNNING/Running"],
                     id="admitted and running: the pods tell, no place"),
        pytest.param(queued(Phase.RUNNING, reason="Running", start_time_ms=NOW),
                     running_job(), [pod("Running")],
                     workload(RESERVED, ADMITTED, EVICTED, PREEMPTED), 0,
                     ["status:SUSPENDED/Preempted"],
                     id="preempted while running: SUSPENDED with Kueue's reason"),
        pytest.param(queued(Phase.RUNNING, reason="Running", start_time_ms=NOW),
                     suspended_job(), [], workload(PENDING, EVICTED, PREEMPTED, REQUEUED), 4,
                     ["status:SUSPENDED/Preempted", "status:QUEUED/WaitingForQuota#4"],
                     id="preempted and requeued before the controller looked: both told"),
        pytest.param(queued(Phase.SUSPENDED, reason="Preempted", start_time_ms=NOW),
                     suspended_job(), [], workload(PENDING, EVICTED, PREEMPTED, REQUEUED), 1,
                     ["status:QUEUED/WaitingForQuota#1"],
                     id="preempted, then queued again"),
        pytest.param(queued(held=True, generation=2), suspended_job(), [], workload(PENDING), 2,
                     ["active:False", "status:SUSPENDED/Held"],
                     id="hold: its Workload leaves the queue, and it is SUSPENDED, Held"),
        pytest.param(HELD, suspended_job(), [], workload(PENDING, active=False), 0, [],
                     id="held and out of the queue: nothing to do"),
        pytest.param(queued(Phase.SUSPENDED, reason="Held", generation=3),
                     suspended_job(), [], workload(PENDING, active=False), 0,
                     ["active:True", "status:QUEUED/WaitingForQuota"],
                     id="release: its Workload goes back in the queue"),
        pytest.param(queued(Phase.SUSPENDED, reason="Deactivated",
                            message="Kueue took it out of queue team-a: its Workload was "
                                    "deactivated"),
                     suspended_job(), [], workload(PENDING, active=False), 0, [],
                     id="one Kueue took out itself is left out"),
        pytest.param(queued(Phase.PENDING, held=True, generation=2), None, [], None, 0,
                     ["status:SUSPENDED/Held"], id="held before its Job was made: none is made"),
        pytest.param(queued(Phase.SUSPENDED, reason="Held", generation=3, job_name=""),
                     None, [], None, 0, ["create", "status:QUEUED/JobCreated"],
                     id="released before its Job was made: it is made now"),
        pytest.param(queued(held=True, cancel_requested=True, generation=3),
                     suspended_job(), [], workload(PENDING, active=False), 0,
                     ["delete:canceled", "status:CANCELED/Canceled"],
                     id="cancel of a held training removes its Job"),
        pytest.param(queued(cancel_requested=True, generation=2), suspended_job(), [],
                     workload(PENDING), 2, ["delete:canceled", "status:CANCELED/Canceled"],
                     id="cancel of a queued training removes its Job"),
    ],
)  # fmt: skip
def test_plan_in_a_queue(
    desired: TrainingRecord,
    observed_job: Job | None,
    pods: list[Any],
    wl: Workload | None,
    position: int,
    expected: list[str],
) -> None:
    actions = plan(
        desired, observed_job, pods, NOW, keep_finished_ms=0, workload=wl, queue_position=position
    )
    assert summary(actions) == expected


def test_a_training_without_a_queue_ignores_kueue() -> None:
    actions = plan(
        record(Phase.QUEUED), suspended_job(), [], NOW, keep_finished_ms=0, workload=workload()
    )
    assert summary(actions) == ["status:SUSPENDED/Suspended"]


def test_a_missing_priority_class_is_written_and_cancel_still_removes_the_job() -> None:
    def planned(desired: TrainingRecord) -> list[WriteStatus | Any]:
        return plan(
            desired, suspended_job(), [], NOW, keep_finished_ms=0, workload=None,
            missing_priority=True,
        )  # fmt: skip

    actions = planned(queued(priority="urgent"))
    assert summary(actions) == ["status:QUEUED/PriorityUnavailable"]
    assert "no WorkloadPriorityClass urgent" in actions[0].update.message
    canceled = planned(queued(priority="urgent", cancel_requested=True, generation=2))
    assert summary(canceled) == ["delete:canceled", "status:CANCELED/Canceled"]
