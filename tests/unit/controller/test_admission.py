"""standing(): what Kueue's Workload says of a queued training, in our words."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.controller.factories import NOW
from trainconductor_controller.admission import Standing, standing, workload_of
from trainconductor_controller.objects import Job, Workload, WorkloadCondition
from trainconductor_core.phases import Phase

SHORT = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu "
    "in flavor gpu, 2 more needed"
)
PREEMPTION = (
    "Preempted to accommodate a workload (UID: 1f, JobUID: 2e) due to reclamation within the "
    "cohort; preemptor path: /research/team-b; preemptee path: /research/team-a"
)


def cond(kind: str, status: str, reason: str, message: str = "") -> WorkloadCondition:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def workload(*conditions: WorkloadCondition, active: bool = True, **status: Any) -> Workload:
    return {
        "metadata": {"name": "job-train-x-1f2e3", "labels": {"kueue.x-k8s.io/job-uid": "u-1"}},
        "spec": {"active": active, "queueName": "team-a"},
        "status": {"conditions": list(conditions), **status},  # type: ignore[typeddict-item]
    }


RESERVED = cond("QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue team-a")
ADMITTED = cond("Admitted", "True", "Admitted", "The workload is admitted")
EVICTED = cond("Evicted", "True", "Preempted", PREEMPTION)
PREEMPTED = cond("Preempted", "True", "InCohortReclamation", PREEMPTION)
REQUEUED = cond("Requeued", "True", "Preempted", PREEMPTION)
PENDING = cond("QuotaReserved", "False", "Pending", SHORT)
IN_FIVE_MINUTES = "2027-01-15T08:05:00Z"


def seen(wl: Workload | None, *, held: bool = False, suspended: bool = True) -> Standing | None:
    # NOW is 2027-01-15T08:00:00Z.
    return standing(wl, queue="team-a", held=held, job_suspended=suspended, now_ms=NOW)


@pytest.mark.parametrize(
    ("wl", "phase", "reason", "says", "waiting"),
    [
        pytest.param(workload(PENDING), Phase.QUEUED, "WaitingForQuota", SHORT, True,
                     id="short of quota: Kueue's own words"),
        pytest.param(workload(), Phase.QUEUED, "WaitingForQuota", "waiting in queue team-a", True,
                     id="no condition yet (behind the head under StrictFIFO): waits in its queue"),
        pytest.param(
            workload(cond("QuotaReserved", "False", "Inadmissible",
                          "LocalQueue team-a doesn't exist")),
            Phase.QUEUED, "QueueUnavailable",
            "queue team-a is not available: LocalQueue team-a doesn't exist", True,
            id="a queue that does not exist is named"),
        pytest.param(None, Phase.QUEUED, "WaitingForWorkload", "take up its Job in queue team-a",
                     True, id="no Workload seen yet: waits for Kueue to make one"),
        pytest.param(workload(RESERVED), Phase.QUEUED, "WaitingForAdmissionChecks",
                     "waiting for its admission checks", False,
                     id="quota reserved, admission checks pending"),
        pytest.param(workload(RESERVED, ADMITTED, admission={"clusterQueue": "team-a"}),
                     Phase.QUEUED, "Admitted", "admitted by Kueue in ClusterQueue team-a", False,
                     id="admitted while its Job is still suspended: it starts"),
        pytest.param(workload(RESERVED, ADMITTED, EVICTED, PREEMPTED), Phase.SUSPENDED,
                     "Preempted", "preempted by Kueue (InCohortReclamation): Preempted to", False,
                     id="preempted, its pods stopping: SUSPENDED with Kueue's reason"),
        pytest.param(workload(RESERVED, ADMITTED,
                              cond("Evicted", "True", "PodsReadyTimeout", "pods not ready")),
                     Phase.SUSPENDED, "Evicted", "evicted by Kueue (PodsReadyTimeout)", False,
                     id="evicted for another reason says which"),
        pytest.param(workload(cond("QuotaReserved", "False", "Pending", SHORT), EVICTED,
                              PREEMPTED, REQUEUED),
                     Phase.QUEUED, "WaitingForQuota", SHORT, True,
                     id="preempted and back in the queue: QUEUED again"),
        pytest.param(workload(cond("QuotaReserved", "False", "Pending", "evicted"),
                              cond("Evicted", "True", "PodsReadyTimeout", "timeout"),
                              requeueState={"count": 2, "requeueAt": IN_FIVE_MINUTES}),
                     Phase.QUEUED, "RequeueBackoff",
                     "tries it again at 2027-01-15 08:05:00 UTC, its requeue number 2", False,
                     id="requeued with a backoff: says when it is tried again"),
        pytest.param(workload(cond("QuotaReserved", "False", "Pending", SHORT),
                              requeueState={"count": 1, "requeueAt": "2027-01-15T07:55:00Z"}),
                     Phase.QUEUED, "WaitingForQuota", SHORT, True,
                     id="a backoff that is over: waits for quota again"),
        pytest.param(workload(cond("Evicted", "True", "Deactivated",
                                   "The workload is deactivated due to exceeding the maximum "
                                   "number of re-queuing retries"), active=False),
                     Phase.SUSPENDED, "Deactivated", "maximum number of re-queuing retries",
                     False, id="deactivated by Kueue, not by its owner"),
    ],
)  # fmt: skip
def test_standing(wl: Workload | None, phase: Phase, reason: str, says: str, waiting: bool) -> None:
    got = seen(wl)
    assert got is not None
    assert (got.phase, got.reason, got.waiting) == (phase, reason, waiting)
    assert says in got.message


@pytest.mark.parametrize(
    ("wl", "suspended"),
    [
        pytest.param(workload(RESERVED, ADMITTED), False, id="admitted and running"),
        pytest.param(workload(RESERVED, ADMITTED, cond("Finished", "True", "Succeeded")), False,
                     id="finished: the Job's conditions tell"),
        pytest.param(None, False, id="no Workload and a Job not suspended: the pods tell"),
    ],
)  # fmt: skip
def test_once_admitted_the_job_and_pods_tell(wl: Workload | None, suspended: bool) -> None:
    assert seen(wl, suspended=suspended) is None


def test_held_is_told_as_held_whatever_kueue_says_meanwhile() -> None:
    for wl in (None, workload(PENDING), workload(RESERVED, ADMITTED), workload(active=False)):
        got = seen(wl, held=True)
        assert got is not None
        assert (got.phase, got.reason) == (Phase.SUSPENDED, "Held")
        assert "release it" in got.message


def test_a_preemption_is_remembered_until_the_next_admission() -> None:
    back = seen(workload(PENDING, EVICTED, PREEMPTED, REQUEUED))
    assert back is not None
    assert back.preempted == ("InCohortReclamation", PREEMPTION)
    readmitted = workload(
        RESERVED,
        ADMITTED,
        cond("Evicted", "False", "QuotaReserved", "Previously: " + PREEMPTION),
        cond("Preempted", "False", "QuotaReserved", "Previously: " + PREEMPTION),
    )
    assert seen(readmitted, suspended=False) is None


def test_the_workload_of_this_very_job_is_found_by_its_uid() -> None:
    job: Job = {"metadata": {"name": "train-x", "uid": "u-2"}}
    older = workload()  # of a Job of the same name made before, uid u-1
    mine = workload()
    mine["metadata"] = {"name": "job-train-x-99", "labels": {"kueue.x-k8s.io/job-uid": "u-2"}}
    assert workload_of(job, [older, mine]) is mine
    assert workload_of(job, [older]) is None


def test_a_missing_priority_class_is_named_while_kueue_makes_no_workload() -> None:
    got = standing(
        None, queue="team-a", held=False, job_suspended=True, now_ms=NOW, missing_priority="urgent"
    )
    assert got is not None
    assert (got.phase, got.reason, got.waiting) == (Phase.QUEUED, "PriorityUnavailable", True)
    assert "priority urgent does not exist (no WorkloadPriorityClass urgent)" in got.message
    assert "team-a" in got.message
    # Once Kueue made the Workload (the class exists after all), the Workload tells.
    made = standing(
        workload(PENDING), queue="team-a", held=False, job_suspended=True, now_ms=NOW,
        missing_priority="urgent",
    )  # fmt: skip
    assert made is not None
    assert made.reason == "WaitingForQuota"
    # Held says held, whatever its priority.
    held = standing(
        None, queue="team-a", held=True, job_suspended=True, now_ms=NOW, missing_priority="urgent"
    )
    assert held is not None
    assert held.reason == "Held"
