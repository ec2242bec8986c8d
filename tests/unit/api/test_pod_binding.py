"""Which training a pod-bound token reports for: the pod the review names,
its training label, and the Job that owns it, which must be the training's.
The apiserver's review and the pod read are the binding's parameters."""

from __future__ import annotations

from typing import Any

import pytest

from trainconductor_api.authentication.errors import Unauthenticated
from trainconductor_api.authentication.pod_binding import (
    PodBinding,
    PodOwner,
    ReportRefused,
    pod_owner,
)
from trainconductor_api.authentication.token_review import (
    BoundPod,
    Review,
    TokenReviewer,
    _review_of,
)
from trainconductor_api.identity import Identity
from trainconductor_core.errors import TrainingNotFound

TRAINING = "0193a2b4c5d6e7f80912"
AUDIENCE = "tc-progress"
USER = "system:serviceaccount:ml:default"
EXTRA = {
    "authentication.kubernetes.io/pod-name": ["train-x-0"],
    "authentication.kubernetes.io/pod-uid": ["uid-1"],
}


def review(**user: Any) -> dict[str, Any]:
    return {"authenticated": True, "audiences": [AUDIENCE], "user": {"username": USER, **user}}


def test_the_review_names_the_pod_a_token_is_bound_to() -> None:
    assert _review_of(review(extra=EXTRA), AUDIENCE).pod == BoundPod("ml", "train-x-0", "uid-1")
    assert _review_of(review(), AUDIENCE).pod is None  # bound to no pod
    assert _review_of(review(extra={**EXTRA, "authentication.kubernetes.io/pod-uid": []}),
                      AUDIENCE).pod is None  # fmt: skip


def test_a_pod_names_its_training_and_its_controlling_job() -> None:
    pod = {
        "metadata": {
            "uid": "uid-1",
            "labels": {"trainconductor.dev/training-id": TRAINING},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": "n", "controller": False},
                {"apiVersion": "batch/v1", "kind": "Job", "name": f"train-{TRAINING}",
                 "controller": True},
            ],
        }
    }  # fmt: skip
    assert pod_owner(pod) == PodOwner("uid-1", TRAINING, f"train-{TRAINING}")
    assert pod_owner({"metadata": {"uid": "u"}}) == PodOwner("u", "", "")


def binding(
    owner: PodOwner | None, job: str = f"train-{TRAINING}", namespace: str = "ml"
) -> PodBinding:
    async def job_of(training_id: str) -> str:
        if training_id != TRAINING:
            raise TrainingNotFound(training_id)
        return job

    reviewer = TokenReviewer(
        lambda token: Review(Identity(USER), BoundPod("ml", "train-x-0", "uid-1")),
        cache_seconds=10,
    )
    return PodBinding(reviewer, lambda ns, name: owner, job_of, namespace=namespace)


async def test_a_pod_of_the_trainings_job_reports_for_it() -> None:
    owner = PodOwner("uid-1", TRAINING, f"train-{TRAINING}")
    pod, training_id = await binding(owner).training_of("token")
    assert (pod.name, training_id) == ("train-x-0", TRAINING)


@pytest.mark.parametrize(
    ("owner", "job", "refusal"),
    [
        pytest.param(PodOwner("uid-1", TRAINING, "someone-elses-job"), f"train-{TRAINING}",
                     ReportRefused, id="a pod labelled as the training's, of another Job"),
        pytest.param(PodOwner("uid-1", "", ""), f"train-{TRAINING}", ReportRefused,
                     id="a pod of no training"),
        pytest.param(PodOwner("uid-1", "0" * 20, "train-" + "0" * 20), f"train-{TRAINING}",
                     ReportRefused, id="a pod of a training that does not exist"),
        pytest.param(None, f"train-{TRAINING}", Unauthenticated, id="the pod is gone"),
        pytest.param(PodOwner("uid-2", TRAINING, f"train-{TRAINING}"), f"train-{TRAINING}",
                     Unauthenticated, id="the pod was replaced (another uid)"),
    ],
)  # fmt: skip
async def test_a_pod_that_is_not_the_trainings_reports_for_nothing(
    owner: PodOwner | None, job: str, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        await binding(owner, job).training_of("token")


async def test_a_pod_outside_the_trainings_namespace_reports_for_nothing() -> None:
    owner = PodOwner("uid-1", TRAINING, f"train-{TRAINING}")
    with pytest.raises(ReportRefused):
        await binding(owner, namespace="trainings").training_of("token")
