"""Kubeflow Trainer's trainerStatus read as a Progress. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from trainconductor_api.kubeflow_status import PATH, BadStatus, progress_of


def metrics(**values: object) -> dict[str, Any]:
    return {"trainerStatus": {"metrics": [{"name": k, "value": v} for k, v in values.items()]}}


def test_kubeflow_callbacks_metrics_become_steps_epoch_loss_and_named_metrics() -> None:
    progress = progress_of(
        metrics(
            current_step="40", total_steps=100, current_epoch="0.8", loss="0.2347",
            learning_rate="1e-05", train_samples_per_second="31.5", grad_norm="0.9",
            note="warming up",
        )
    )  # fmt: skip
    assert (progress.step, progress.total_steps, progress.epoch) == (40, 100, 0.8)
    assert (progress.loss, progress.learning_rate) == (0.2347, 1e-05)
    assert progress.samples_per_second == 31.5
    assert dict(progress.metrics) == {"grad_norm": 0.9}


def test_the_trainers_own_percent_and_eta_are_kept() -> None:
    progress = progress_of(
        {"trainerStatus": {"progressPercentage": 45, "estimatedRemainingSeconds": 795}}
    )
    assert progress.percent == 45.0
    assert progress.eta.seconds == 795


def test_a_nan_loss_stays_nan() -> None:
    assert str(progress_of(metrics(loss="nan")).loss) == "nan"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="not an object"),
        pytest.param({"status": {}}, id="no trainerStatus"),
        pytest.param({"trainerStatus": {"progressPercentage": "45"}}, id="percent as text"),
        pytest.param({"trainerStatus": {"estimatedRemainingSeconds": -1}}, id="negative ETA"),
        pytest.param({"trainerStatus": {"metrics": {"loss": 1}}}, id="metrics not a list"),
        pytest.param({"trainerStatus": {"metrics": [{"value": "1"}]}}, id="a metric without name"),
    ],
)
def test_a_body_that_is_no_trainer_status_is_refused(body: object) -> None:
    with pytest.raises(BadStatus):
        progress_of(body)


def test_the_path_names_the_namespace_and_the_trainjob() -> None:
    match = PATH.fullmatch(
        "/apis/trainer.kubeflow.org/v1alpha1/namespaces/ml/trainjobs/01a2451bb5c74b431095/status"
    )
    assert match is not None
    assert (match["namespace"], match["name"]) == ("ml", "01a2451bb5c74b431095")
    assert PATH.fullmatch("/apis/trainer.kubeflow.org/v1alpha1/namespaces/ml/trainjobs/x") is None
