"""waiting_queues(): the LocalQueues whose places are worth a call to Kueue's
visibility API, from the Workloads the leader watches."""

from __future__ import annotations

import pytest

from trainconductor_controller.objects import Workload, WorkloadCondition
from trainconductor_controller.positions import waiting_queues


def cond(kind: str, status: str) -> WorkloadCondition:
    return {"type": kind, "status": status, "reason": "", "message": ""}


def workload(queue: str, *conditions: WorkloadCondition, active: bool = True) -> Workload:
    return {
        "metadata": {"name": f"job-{queue}"},
        "spec": {"active": active, "queueName": queue},
        "status": {"conditions": list(conditions)},
    }


@pytest.mark.parametrize(
    ("workloads", "queues"),
    [
        pytest.param([], set(), id="no Workload: no queue to read"),
        pytest.param([workload("team-a")], {"team-a"},
                     id="a Workload with no condition yet waits"),
        pytest.param([workload("team-a", cond("QuotaReserved", "False"))], {"team-a"},
                     id="short of quota: waits"),
        pytest.param([workload("team-a", cond("QuotaReserved", "True"))], set(),
                     id="holding quota: no place to read"),
        pytest.param([workload("team-a", cond("QuotaReserved", "False"), cond("Finished", "True"))],
                     set(), id="finished: gone from the queue"),
        pytest.param([workload("team-a", active=False)], set(),
                     id="held (inactive): out of the queue"),
        pytest.param([workload("")], set(), id="a Workload of no queue"),
        pytest.param(
            [workload("team-a", cond("QuotaReserved", "True")), workload("team-a"),
             workload("team-b", cond("QuotaReserved", "False")),
             workload("team-c", cond("QuotaReserved", "True"))],
            {"team-a", "team-b"},
            id="one read per queue with someone waiting, however many wait there",
        ),
    ],
)  # fmt: skip
def test_waiting_queues(workloads: list[Workload], queues: set[str]) -> None:
    assert waiting_queues(workloads) == queues
