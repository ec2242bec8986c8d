"""classify(): why an attempt failed, and so whether it is retried."""

from __future__ import annotations

from typing import Any

import pytest

from trainconductor_controller.failures import Cause, classify
from trainconductor_controller.objects import Pod

USER_CODES = frozenset({1})


def rank(index: int, phase: str = "Failed", **status: Any) -> Pod:
    return {
        "metadata": {
            "name": f"train-x-{index}-abcde",
            "labels": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "status": {"phase": phase, **status},  # type: ignore[typeddict-item]
    }


def exited(index: int, code: int, at: str, reason: str = "Error", message: str = "") -> Pod:
    terminated = {"exitCode": code, "reason": reason, "message": message, "finishedAt": at}
    return rank(index, containerStatuses=[{"name": "trainer", "state": {"terminated": terminated}}])


def evicted(index: int) -> Pod:
    condition = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }
    return rank(index, conditions=[condition])


@pytest.mark.parametrize(
    ("pods", "cause", "what"),
    [
        pytest.param(
            [rank(0, "Succeeded"), exited(3, 137, "2027-01-15T08:05:00Z", "OOMKilled")],
            Cause.RETRYABLE,
            "rank 3 exited with code 137 (OOMKilled)",
            id="an out-of-memory kill spends a retry",
        ),
        pytest.param(
            [exited(1, 1, "2027-01-15T08:05:00Z", message="data_path: no such file")],
            Cause.USER_ERROR,
            "rank 1 exited with code 1 (Error): data_path: no such file",
            id="an exit code the operator lists is the user's error, with its message",
        ),
        pytest.param(
            [
                exited(0, 1, "2027-01-15T08:05:09Z", message="peer lost"),
                exited(2, 134, "2027-01-15T08:05:01Z", message="NCCL error"),
            ],
            Cause.RETRYABLE,
            "rank 2 exited with code 134 (Error): NCCL error",
            id="the first rank to fail is the cause, not those that lost their peer",
        ),
        pytest.param(
            [exited(0, 1, "2027-01-15T08:05:09Z", message="peer lost"), evicted(3)],
            Cause.DISRUPTION,
            "rank 3 was stopped by Kubernetes (EvictionByEvictionAPI: Eviction API: evicting)",
            id="a disruption of any rank is the cause, whatever the others exited with",
        ),
        pytest.param(
            [rank(2, reason="Evicted", message="The node was low on resource: memory.")],
            Cause.DISRUPTION,
            "rank 2 was stopped by Kubernetes (Evicted: The node was low on resource: memory.)",
            id="a kubelet's eviction is a disruption too",
        ),
        pytest.param(
            [],
            Cause.RETRYABLE,
            "Job has reached the specified backoff limit",
            id="pods gone: the Job's words, and a retry",
        ),
    ],
)
def test_classify_a_gangs_failure(pods: list[Pod], cause: Cause, what: str) -> None:
    failure = classify(
        pods,
        multi_node=True,
        user_error_exit_codes=USER_CODES,
        job_message="Job has reached the specified backoff limit",
    )
    assert (failure.cause, failure.what) == (cause, what)


@pytest.mark.parametrize(
    ("pods", "job_message", "cause", "what"),
    [
        pytest.param(
            [],
            "Pod e2e/train-x-2-q8z4k has condition DisruptionTarget matching FailJob rule at "
            "index 0",
            Cause.DISRUPTION,
            "rank 2 was stopped by Kubernetes (DisruptionTarget)",
            id="the disrupted pod gone: the Job's words name it",
        ),
        pytest.param(
            [exited(0, 143, "2027-01-15T08:05:00Z")],
            "Pod e2e/train-x-2-q8z4k has condition DisruptionTarget matching FailJob rule at "
            "index 0",
            Cause.DISRUPTION,
            "rank 2 was stopped by Kubernetes (DisruptionTarget)",
            id="the ranks stopped after a disruption do not make it a crash",
        ),
        pytest.param(
            [exited(0, 143, "2027-01-15T08:04:00Z"), exited(3, 1, "2027-01-15T08:05:00Z")],
            "Container trainer for pod e2e/train-x-3-abcde failed with exit code 1 matching "
            "FailJob rule at index 1",
            Cause.USER_ERROR,
            "rank 3 exited with code 1 (Error)",
            id="the pod the Job controller names is the cause",
        ),
        pytest.param(
            [],
            "Container trainer for pod e2e/train-x-1-abcde failed with exit code 139 matching "
            "FailJob rule at index 1",
            Cause.RETRYABLE,
            "rank 1 exited with code 139",
            id="that pod gone: its exit code from the Job's words",
        ),
    ],
)
def test_the_jobs_verdict_names_the_failure_that_ended_it(
    pods: list[Pod], job_message: str, cause: Cause, what: str
) -> None:
    failure = classify(
        pods, multi_node=True, user_error_exit_codes=USER_CODES, job_message=job_message
    )
    assert (failure.cause, failure.what) == (cause, what)


def test_a_single_node_trainings_failure_names_the_trainer() -> None:
    failure = classify(
        [exited(0, 3, "2027-01-15T08:05:00Z", message="CUDA out of memory")],
        multi_node=False,
        user_error_exit_codes=USER_CODES,
        job_message="",
    )
    assert failure.what == "the trainer exited with code 3 (Error): CUDA out of memory"
