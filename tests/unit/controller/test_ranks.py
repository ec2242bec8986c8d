"""The ranks of a multi-node training in one line, and as conditions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.controller.factories import job
from trainconductor_controller.objects import Pod
from trainconductor_controller.observe import observe
from trainconductor_controller.ranks import gang_summary, rank_conditions, ranks
from trainconductor_core.phases import Phase

UNSCHEDULABLE = "0/6 nodes are available: 4 Insufficient nvidia.com/gpu."


def rank(index: int, phase: str, created: str = "2027-01-15T08:00:00Z", **status: Any) -> Pod:
    return {
        "metadata": {
            "name": f"train-x-{index}-abcde",
            "creationTimestamp": created,
            "labels": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "spec": {"nodeName": f"kwok-gpu-{index}"} if phase != "Pending" else {},
        "status": {"phase": phase, **status},  # type: ignore[typeddict-item]
    }


def unschedulable(index: int) -> Pod:
    scheduled = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": UNSCHEDULABLE,
    }
    return rank(index, "Pending", conditions=[scheduled])


def oom_killed(index: int) -> Pod:
    terminated = {"exitCode": 137, "reason": "OOMKilled"}
    return rank(index, "Failed", containerStatuses=[{"state": {"terminated": terminated}}])


def evicted(index: int) -> Pod:
    disrupted = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    return rank(index, "Failed", conditions=[disrupted])


@pytest.mark.parametrize(
    ("pods", "nodes", "phase", "reason", "message"),
    [
        pytest.param([rank(i, "Running") for i in range(4)], 4, Phase.RUNNING, "Running",
                     "4/4 ranks running", id="every rank runs"),
        pytest.param([rank(0, "Running"), rank(1, "Running"), unschedulable(2),
                      rank(3, "Running")], 4,
                     Phase.QUEUED, "Unschedulable",
                     f"3/4 ranks running; rank 2 waits: {UNSCHEDULABLE}",
                     id="a rank the scheduler can not place holds the gang back"),
        pytest.param([unschedulable(i) for i in range(4)], 4, Phase.QUEUED, "Unschedulable",
                     f"rank 0 waits: {UNSCHEDULABLE} (4 ranks wait)",
                     id="no rank placed: the first one's words, and how many wait"),
        pytest.param([rank(0, "Running"), rank(1, "Running"), rank(2, "Running"), oom_killed(3)], 4,
                     Phase.RUNNING, "RankFailed", "rank 3 failed: exit code 137, OOMKilled",
                     id="a failed rank is said first"),
        pytest.param([rank(0, "Running"), evicted(1)], 2, Phase.RUNNING, "RankFailed",
                     "rank 1 failed: stopped by Kubernetes (EvictionByEvictionAPI)",
                     id="an evicted rank says who stopped it"),
        pytest.param([rank(0, "Running")], 2, Phase.QUEUED, "NoPod",
                     "1/2 ranks running; rank 1 waits: its pod is not made yet",
                     id="a pod the Job controller has not made yet"),
        pytest.param([rank(0, "Succeeded"), rank(1, "Running")], 2, Phase.RUNNING, "Running",
                     "1/2 ranks done, 1 running", id="ranks finishing one by one"),
        pytest.param([oom_killed(1), rank(0, "Running"),
                      rank(1, "Running", "2027-01-15T08:09:00Z")], 2,
                     Phase.RUNNING, "Running", "2/2 ranks running",
                     id="a rank's newest pod speaks for it"),
    ],
)  # fmt: skip
def test_gang_summary(pods: list[Pod], nodes: int, phase: Phase, reason: str, message: str) -> None:
    assert gang_summary(ranks(pods, nodes)) == (phase, reason, message)


def test_each_rank_is_a_condition_of_the_training() -> None:
    states = ranks([rank(0, "Running"), unschedulable(1)], 2)
    conditions = rank_conditions(states)
    assert [(c.type, c.status, c.reason) for c in conditions] == [
        ("Rank0", "True", "Running"),
        ("Rank1", "False", "Unschedulable"),
    ]
    assert conditions[1].message == UNSCHEDULABLE


def test_a_running_gangs_training_shows_the_summary_and_a_condition_per_rank() -> None:
    seen = observe(job(active=2), [rank(0, "Running"), rank(1, "Running")], nodes=2)
    assert (seen.phase, seen.message) == (Phase.RUNNING, "2/2 ranks running")
    assert [c.type for c in seen.conditions] == ["Rank0", "Rank1"]
