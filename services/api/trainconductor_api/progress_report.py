"""A trainer's progress report: its validation, what the API computes of
it, and the sentence a progress event says. Pure.

Every number must be finite, except the loss: training does produce a NaN
loss (an overflow in fp16, a bad batch), and a reader needs to see it, so it
is kept and shown as NaN. Infinity is refused everywhere: it says nothing a
person can act on and breaks every average downstream.
"""

from __future__ import annotations

import math
import re

from trainconductor.v1 import progress_pb2

from trainconductor_api.validation import Violation

MAX_METRICS = 32
MAX_STEPS = 10**12
# A letter or "_" first, as the names trainers log (eval_loss, train/grad_norm).
_METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]{0,63}$")


def validate_progress(progress: progress_pb2.Progress, field: str = "progress") -> list[Violation]:
    violations: list[Violation] = []

    def bad(name: str, description: str) -> None:
        violations.append(Violation(f"{field}.{name}", description))

    if not 0 <= progress.step <= MAX_STEPS:
        bad("step", f"must be between 0 and {MAX_STEPS}")
    if not 0 <= progress.total_steps <= MAX_STEPS:
        bad("total_steps", f"must be between 0 and {MAX_STEPS}")
    elif progress.total_steps and progress.step > progress.total_steps:
        bad("step", f"is past total_steps ({progress.total_steps})")
    if not (math.isfinite(progress.percent) and 0 <= progress.percent <= 100):
        bad("percent", "must be a number from 0 to 100")
    if progress.HasField("eta") and (progress.eta.seconds < 0 or progress.eta.nanos < 0):
        bad("eta", "must not be negative")
    if not (math.isfinite(progress.epoch) and progress.epoch >= 0):
        bad("epoch", "must be a finite number, not negative")
    if progress.HasField("loss") and math.isinf(progress.loss):
        bad("loss", "must be a finite number or NaN")
    for name in ("learning_rate", "samples_per_second", "tokens_per_second"):
        if progress.HasField(name):
            value = getattr(progress, name)
            if not (math.isfinite(value) and value >= 0):
                bad(name, "must be a finite number, not negative")
    if len(progress.metrics) > MAX_METRICS:
        bad("metrics", f"has {len(progress.metrics)} names; at most {MAX_METRICS} are kept")
    for name, value in sorted(progress.metrics.items())[: MAX_METRICS + 1]:
        if not _METRIC_NAME.fullmatch(name):
            bad(
                f"metrics[{name[:64]!r}]",
                "is not a metric name: a letter or '_', then up to 63 letters, digits, "
                "'_', '.', '/' or '-'",
            )
        elif not math.isfinite(value):
            bad(f"metrics[{name!r}]", "must be a finite number")
    if progress.HasField("report_time"):
        bad("report_time", "is set by the API, not the trainer")
    return violations


def as_recorded(progress: progress_pb2.Progress) -> progress_pb2.Progress:
    """The report as the store keeps it: with steps known, the percent is
    the API's and the ETA the store's (from the step rate); without, the
    trainer's own figures stand."""
    recorded = progress_pb2.Progress()
    recorded.CopyFrom(progress)
    if progress.total_steps:
        recorded.percent = min(100.0, 100.0 * progress.step / progress.total_steps)
        recorded.ClearField("eta")
    return recorded


def describe(progress: progress_pb2.Progress) -> str:
    """The sentence of a progress event, for people: "step 120 of 1000
    (12.0%), epoch 0.36, loss 0.5312"."""
    if progress.total_steps:
        parts = [f"step {progress.step} of {progress.total_steps} ({progress.percent:.1f}%)"]
    elif progress.step:
        parts = [f"step {progress.step}"]
    else:
        parts = [f"{progress.percent:.1f}%"]
    if progress.epoch:
        parts.append(f"epoch {progress.epoch:.2f}")
    if progress.HasField("loss"):
        parts.append(f"loss {progress.loss:.4g}")  # NaN reads "nan": as it is
    return ", ".join(parts)
