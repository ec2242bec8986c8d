"""Which pod's log is kept for each rank of a finished training: the newest
pod of its latest attempt."""

from __future__ import annotations

from typing import Any, cast

from trainconductor_controller.log_keeper import last_attempts
from trainconductor_controller.objects import Pod


def pod(name: str, job: str, created: str, rank: int | None = None) -> Pod:
    labels = {"batch.kubernetes.io/job-name": job}
    if rank is not None:
        labels["batch.kubernetes.io/job-completion-index"] = str(rank)
    metadata: dict[str, Any] = {"name": name, "labels": labels, "creationTimestamp": created}
    return cast(Pod, {"metadata": metadata})


ID = "0193a1b2c3d4e5f60718"


def test_a_one_pod_training_is_rank_0_of_its_attempt() -> None:
    pods = [pod("train-x-abcde", f"train-{ID}", "2026-12-05T07:00:00Z")]
    assert last_attempts(pods) == [(0, 1, "train-x-abcde")]


def test_each_rank_keeps_its_latest_attempts_pod() -> None:
    pods = [
        pod("a2-r1", f"train-{ID}-a2", "2026-12-05T07:05:00Z", rank=1),
        pod("a1-r0", f"train-{ID}", "2026-12-05T07:00:00Z", rank=0),
        pod("a2-r0", f"train-{ID}-a2", "2026-12-05T07:05:00Z", rank=0),
        pod("a1-r1", f"train-{ID}", "2026-12-05T07:00:01Z", rank=1),
        # Attempt 10 comes after attempt 9, whatever their names' order.
        pod("a10-r0", f"train-{ID}-a10", "2026-12-05T08:00:00Z", rank=0),
        pod("a9-r0", f"train-{ID}-a9", "2026-12-05T07:59:00Z", rank=0),
    ]
    assert last_attempts(pods) == [(0, 10, "a10-r0"), (1, 2, "a2-r1")]
