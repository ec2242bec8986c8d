"""A training's life as the controller records it, written straight through
the store's own scripts: for the tests and benches that need many finished
trainings without a cluster to run them."""

from __future__ import annotations

from trainconductor_core.phases import Phase
from trainconductor_core.record import Condition, StatusUpdate
from trainconductor_core.store import TrainingStore

_FINAL = {
    Phase.COMPLETED: ("Completed", "the training completed", "Complete", "CompletionsReached"),
    Phase.FAILED: (
        "BackoffLimitExceeded",
        "its trainer exited with code 1: CUDA out of memory",
        "Failed",
        "BackoffLimitExceeded",
    ),
    Phase.CANCELED: ("Canceled", "canceled on request; its Job and pods were deleted", "", ""),
}


async def start(store: TrainingStore, training_id: str, *, start_ms: int) -> None:
    """From PENDING to RUNNING, through the statuses a Job on its way goes by."""
    name = f"tc-{training_id}"
    for update in (
        StatusUpdate(
            1, Phase.QUEUED, "JobCreated", "the Job was created; waiting for its pod", name
        ),
        StatusUpdate(
            1,
            Phase.QUEUED,
            "Unschedulable",
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            name,
        ),
        StatusUpdate(1, Phase.RUNNING, "Running", "its trainer runs", name, 1, (), start_ms),
    ):
        await store.write_status(training_id, update)


async def finish(
    store: TrainingStore, training_id: str, phase: Phase, *, finish_ms: int | None
) -> None:
    """To `phase` (final), with the Job's conditions; `finish_ms` None leaves
    the finish time to the store (its clock)."""
    reason, message, kind, condition_reason = _FINAL[phase]
    conditions: tuple[Condition, ...] = ()
    if kind:
        text = "Reached expected number of succeeded pods" if kind == "Complete" else message
        at = finish_ms or 0
        conditions = (
            Condition("SuccessCriteriaMet" if kind == "Complete" else "FailureTarget", "True",
                      condition_reason, text, at),
            Condition(kind, "True", condition_reason, text, at),
        )  # fmt: skip
    update = StatusUpdate(
        1, phase, reason, message, f"tc-{training_id}", 1, conditions, None, finish_ms
    )
    await store.write_status(training_id, update)
