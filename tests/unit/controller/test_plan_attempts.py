"""plan(): attempts of a training, each a Job of its own: what a failed
attempt leads to, the headless Service of a multi-node one, and the Jobs of
other attempts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.controller.factories import ID, NOW, job, pod, record
from tests.unit.controller.test_failures import evicted, exited
from trainconductor_controller.names import job_name
from trainconductor_controller.objects import Job
from trainconductor_controller.plan import (
    CreateJob,
    CreateService,
    DeleteJob,
    WriteStatus,
    plan,
)
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingRecord

USER_CODES = frozenset({1})
FAILED = ("Failed", "PodFailurePolicy", "Container trainer for pod failed")


def _attempt(name: str) -> str:
    """'a1' for train-<id>, 'a2' for train-<id>-a2."""
    return name.removeprefix(f"train-{ID}").removeprefix("-") or "a1"


def summary(actions: list[Any]) -> list[str]:
    words = []
    for action in actions:
        if isinstance(action, CreateJob):
            words.append(f"create:a{action.attempt}")
        elif isinstance(action, CreateService):
            words.append(f"service:{_attempt(action.job_name)}")
        elif isinstance(action, DeleteJob):
            words.append(f"delete:{_attempt(action.name)}")
        elif isinstance(action, WriteStatus):
            u = action.update
            words.append(f"status:{u.phase}/{u.reason}#{u.attempts}r{u.retries}")
    return words


def gang(phase: Phase = Phase.RUNNING, nodes: int = 4, **changes: Any) -> TrainingRecord:
    made = record(phase, **{"max_retries": 2, **changes})
    made.spec.resources.nodes = nodes
    return made


def attempt_job(attempt: int, *conditions: tuple[str, str, str], **status: Any) -> Job:
    made = job(*conditions, **status)
    made["metadata"]["name"] = job_name(ID, attempt)
    made["metadata"]["uid"] = f"uid-{attempt}"
    return made


def rank_pod(index: int, phase: str = "Running") -> Any:
    made = pod(phase)
    made["metadata"]["labels"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    return made


RETRIED = "attempt 2: rank 3 exited with code 137 (OOMKilled) in attempt 1"


@pytest.mark.parametrize(
    ("desired", "current", "pods", "expected"),
    [
        pytest.param(
            gang(), attempt_job(1, FAILED, failed=1),
            [exited(3, 137, "2027-01-15T08:05:00Z", "OOMKilled")],
            ["status:QUEUED/Restarting#2r1", "create:a2", "delete:a1"],
            id="a rank's crash restarts the gang as attempt 2, spending a retry",
        ),
        pytest.param(
            gang(attempts=3, retries=2, job_name=job_name(ID, 3)),
            attempt_job(3, FAILED, failed=1), [exited(0, 137, "2027-01-15T08:05:00Z")],
            ["status:FAILED/BackoffLimitExceeded#3r2"],
            id="with no retry left it fails",
        ),
        pytest.param(
            gang(attempts=3, retries=2, job_name=job_name(ID, 3)),
            attempt_job(3, FAILED, failed=1), [evicted(1)],
            ["status:QUEUED/Restarting#4r2", "create:a4", "delete:a3"],
            id="a disruption restarts it without spending one, even with none left",
        ),
        pytest.param(
            gang(), attempt_job(1, FAILED, failed=1),
            [exited(1, 1, "2027-01-15T08:05:00Z", message="no such dataset")],
            ["status:FAILED/UserError#1r0"],
            id="a user's error fails it at once",
        ),
        pytest.param(
            gang(nodes=1), attempt_job(1, FAILED, failed=1),
            [exited(0, 3, "2027-01-15T08:05:00Z")],
            ["status:QUEUED/Restarting#2r1", "create:a2", "delete:a1"],
            id="a single-node training is retried the same way",
        ),
        pytest.param(
            gang(), attempt_job(1, ("Failed", "DeadlineExceeded", "too slow"), failed=1), [],
            ["status:FAILED/DeadlineExceeded#1r0"],
            id="an exceeded deadline is not retried",
        ),
        pytest.param(
            gang(cancel_requested=True, generation=2), attempt_job(1, FAILED, failed=1),
            [exited(3, 137, "2027-01-15T08:05:00Z")],
            ["delete:a1", "status:CANCELED/Canceled#1r0"],
            id="canceled as its attempt failed: no next attempt",
        ),
        pytest.param(
            gang(Phase.QUEUED, attempts=2, retries=1, reason="Restarting", message=RETRIED,
                 job_name=job_name(ID, 2)),
            None, [], ["create:a2"],
            id="the next attempt recorded and not made (a crash): it is made then",
        ),
        pytest.param(
            gang(Phase.QUEUED, attempts=2, retries=1, reason="Restarting", message=RETRIED,
                 job_name=job_name(ID, 2)),
            attempt_job(2, active=4), [rank_pod(i) for i in range(4)],
            ["service:a2", "status:RUNNING/Running#2r1"],
            id="a multi-node attempt's Job gets its Service",
        ),
    ],
)  # fmt: skip
def test_attempts(
    desired: TrainingRecord, current: Job | None, pods: list[Any], expected: list[str]
) -> None:
    actions = plan(
        desired,
        current,
        pods,
        NOW,
        keep_finished_ms=0,
        services=frozenset(),
        user_error_exit_codes=USER_CODES,
    )
    assert summary(actions) == expected


def test_the_restart_says_why_in_its_event_and_names_the_next_job() -> None:
    actions = plan(
        gang(),
        attempt_job(1, FAILED, failed=1),
        [exited(3, 137, "2027-01-15T08:05:00Z", "OOMKilled")],
        NOW,
        keep_finished_ms=0,
        user_error_exit_codes=USER_CODES,
    )
    written = next(a for a in actions if isinstance(a, WriteStatus))
    assert written.failed_attempt == "retryable"  # counted by cause and outcome
    update = written.update
    assert update.message == f"{RETRIED}; the gang restarts (retry 1 of 2)"
    assert update.job_name == f"train-{ID}-a2"


def test_a_user_error_fails_with_that_ranks_termination_message() -> None:
    actions = plan(
        gang(),
        attempt_job(1, FAILED, failed=1),
        [exited(1, 1, "2027-01-15T08:05:00Z", message="data_path: no such file")],
        NOW,
        keep_finished_ms=0,
        user_error_exit_codes=USER_CODES,
    )
    update = next(a.update for a in actions if isinstance(a, WriteStatus))
    assert update.message.startswith("rank 1 exited with code 1 (Error): data_path: no such file")


def test_a_service_already_there_is_not_made_again() -> None:
    desired = gang(Phase.RUNNING, attempts=2, retries=1, job_name=job_name(ID, 2))
    actions = plan(
        desired,
        attempt_job(2, active=4),
        [pod("Running")],
        NOW,
        keep_finished_ms=0,
        services=frozenset({job_name(ID, 2)}),
    )
    assert not [a for a in actions if isinstance(a, CreateService)]


@pytest.mark.parametrize(
    ("desired", "expected"),
    [
        pytest.param(gang(Phase.CANCELED), ["delete:a1", "delete:a2"],
                     id="a canceled training's Jobs of every attempt go"),
        pytest.param(gang(Phase.COMPLETED, finish_time_ms=NOW), [],
                     id="a finished one's stay a while"),
        pytest.param(None, ["delete:a1", "delete:a2"], id="orphans of every attempt go"),
    ],
)  # fmt: skip
def test_jobs_of_every_attempt(desired: TrainingRecord | None, expected: list[str]) -> None:
    actions = plan(
        desired,
        attempt_job(1, FAILED),
        [],
        NOW,
        keep_finished_ms=3_600_000,
        other_jobs=[attempt_job(2)],
    )
    assert summary(actions) == expected


def test_an_earlier_attempts_job_left_by_a_crash_goes() -> None:
    desired = gang(Phase.QUEUED, attempts=2, retries=1, job_name=job_name(ID, 2))
    actions = plan(
        desired,
        attempt_job(2, active=4),
        [pod("Running")],
        NOW,
        keep_finished_ms=0,
        other_jobs=[attempt_job(1, FAILED)],
    )
    assert summary(actions)[0] == "delete:a1"


def test_a_training_recorded_before_attempts_were_jobs_counts_its_one_job_as_the_first() -> None:
    """Its `attempts` counted its Job's pods (a pod retried in the Job made 3)."""
    recorded_earlier = gang(Phase.RUNNING, nodes=1, attempts=3, job_name=job_name(ID))
    actions = plan(recorded_earlier, attempt_job(1, active=1), [pod("Running")], NOW,
                   keep_finished_ms=0)  # fmt: skip
    assert summary(actions) == ["status:RUNNING/Running#1r0"]


def test_past_the_free_restarts_a_disruption_spends_a_retry() -> None:
    # A fourth attempt after one retry: two came from disruptions.
    desired = gang(attempts=4, retries=1, job_name=job_name(ID, 4))
    actions = plan(desired, attempt_job(4, FAILED, failed=1), [evicted(2)], NOW,
                   keep_finished_ms=0, max_disruption_restarts=2)  # fmt: skip
    assert summary(actions) == ["status:QUEUED/Restarting#5r2", "create:a5", "delete:a4"]
    update = next(a.update for a in actions if isinstance(a, WriteStatus))
    assert "after 2 restarts for disruptions" in update.message
    assert update.message.endswith("(retry 2 of 2)")
