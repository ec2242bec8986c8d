"""How a training's progress reads (the bar of tcctl get and watch), and
what a trainer's reporter sends and drops. Pure: no API."""

from __future__ import annotations

import math

import pytest
from trainconductor.v1 import progress_pb2

from trainconductor_client.progress import (
    Reporter,
    metrics_line,
    progress_line,
    remaining_seconds,
)

REPORTED = 1_800_000_000


def progress(**fields: object) -> progress_pb2.Progress:
    value = progress_pb2.Progress(**fields)  # type: ignore[arg-type]
    value.report_time.FromSeconds(REPORTED)
    return value


@pytest.mark.parametrize(
    ("report", "now", "line"),
    [
        pytest.param(
            progress(step=310, total_steps=1000, percent=31.0, loss=0.53125),
            REPORTED,
            "[######··············]  31.0%  step 310/1000  loss 0.5312",
            id="steps, percent and loss; no ETA yet",
        ),
        pytest.param(
            progress(step=500, total_steps=1000, percent=50.0, eta={"seconds": 750}),
            REPORTED + 30,
            "[##########··········]  50.0%  step 500/1000  ETA 12m",
            id="the ETA counts down from the report",
        ),
        pytest.param(
            progress(step=999, total_steps=1000, percent=99.9, eta={"seconds": 7500}),
            REPORTED,
            "[####################]  99.9%  step 999/1000  ETA 2h05m",
            id="hours and minutes",
        ),
        pytest.param(
            progress(step=40, loss=math.nan),
            REPORTED,
            "[····················]   0.0%  step 40  loss nan",
            id="no total: the step alone; a NaN loss shown as NaN",
        ),
        pytest.param(
            progress(percent=45.0, eta={"seconds": 20}),
            REPORTED + 60,
            "[#########···········]  45.0%  ETA 0s",
            id="the trainer's own percent and an overdue ETA",
        ),
    ],
)
def test_the_progress_line(report: progress_pb2.Progress, now: float, line: str) -> None:
    assert progress_line(report, now=now) == line


def test_remaining_is_unknown_without_an_eta() -> None:
    assert remaining_seconds(progress(step=1), now=REPORTED) is None


def test_the_metrics_line_names_each_figure() -> None:
    report = progress(
        epoch=1.5, learning_rate=2e-4, tokens_per_second=950.0, metrics={"grad_norm": 0.8}
    )
    assert metrics_line(report) == (
        "epoch 1.5, learning_rate 0.0002, tokens_per_second 950, grad_norm 0.8"
    )


def test_outside_a_training_pod_there_is_no_reporter() -> None:
    assert Reporter.from_environment({}) is None
    assert Reporter.from_environment({"TC_TRAINING_ID": "x"}) is None
