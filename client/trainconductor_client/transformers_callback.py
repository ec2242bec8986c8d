"""A Hugging Face `transformers` `TrainerCallback` that reports a training's
progress to Train Conductor on each log step (the Trainer's `logging_steps`,
fms-hf-tuning's too): its step of max_steps, epoch, loss, learning rate,
throughput and every other scalar it logs (eval_loss, grad_norm, ...).

    from trainconductor_client.transformers_callback import TrainConductorCallback
    trainer = Trainer(..., callbacks=[TrainConductorCallback()])

Outside a training pod (no TC_PROGRESS_ADDRESS) it does nothing; on a
multi-process run, the main process alone reports. A report that fails is
dropped: training never stops for it. Needs the `transformers` extra
(`pip install trainconductor-client[transformers]`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainconductor_client.progress import Reporter

# What the Trainer logs that has a field of its own (the rest are metrics).
_LOSS = "loss"
_LEARNING_RATE = "learning_rate"
_SAMPLES = ("train_samples_per_second", "eval_samples_per_second")
_TOKENS = ("train_tokens_per_second",)
_NOT_METRICS = {"epoch", "step", "total_flos"}


class TrainConductorCallback(TrainerCallback):
    def __init__(
        self, reporter: Reporter | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        """`reporter`: where to report; by default the training pod's own,
        from `environ` (the process's environment unless given): none
        outside a training pod."""
        self._reporter = reporter if reporter is not None else Reporter.from_environment(environ)

    @property
    def reporting(self) -> bool:
        return self._reporter is not None

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        self._report(state, {}, force=True)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._report(state, logs or {})

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        self._report(state, {}, force=True)

    def _report(self, state: TrainerState, logs: dict[str, Any], *, force: bool = False) -> None:
        if self._reporter is None or not state.is_world_process_zero:
            return
        scalars = {
            k: float(v)
            for k, v in logs.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool)
        }
        loss = scalars.pop(_LOSS, None)
        if loss is None:
            loss = _last_loss(state)
        self._reporter.report(
            step=int(state.global_step),
            total_steps=int(state.max_steps or 0),
            epoch=float(state.epoch or 0.0),
            loss=loss if loss is None or not math.isinf(loss) else None,
            learning_rate=scalars.pop(_LEARNING_RATE, None),
            samples_per_second=next((scalars.pop(k) for k in _SAMPLES if k in scalars), None),
            tokens_per_second=next((scalars.pop(k) for k in _TOKENS if k in scalars), None),
            metrics={k: v for k, v in scalars.items() if k not in _NOT_METRICS},
            force=force or _last_step(state),
        )


def _last_step(state: TrainerState) -> bool:
    return bool(state.max_steps) and state.global_step >= state.max_steps


def _last_loss(state: TrainerState) -> float | None:
    """The loss last logged (kept in the state's log history), so a report
    between log steps still shows it."""
    for entry in reversed(state.log_history or []):
        value = entry.get(_LOSS)
        if isinstance(value, numbers.Real):
            return float(value)
    return None
