"""Failures of the outside world, each known to be retryable or permanent."""

from __future__ import annotations


class TrainConductorError(Exception):
    """Base of the project's own errors."""

    retryable = False


class StoreUnavailable(TrainConductorError):
    """Redis could not be reached or did not answer in time."""

    retryable = True


class TrainingNotFound(TrainConductorError):
    """No training has this id."""

    def __init__(self, training_id: str, why: str = "") -> None:
        super().__init__(f"training {training_id!r} not found" + (f": {why}" if why else ""))
        self.training_id = training_id


class TrainingFinished(TrainConductorError):
    """The training finished: what only a running one takes (a progress
    report) is refused."""

    def __init__(self, training_id: str, phase: object) -> None:
        super().__init__(f"training {training_id!r} finished ({phase}); it takes no more reports")
        self.training_id = training_id


class InvalidCursor(TrainConductorError):
    """A page token or event id that this store did not hand out."""


class HistoryTrimmed(TrainConductorError):
    """Events after the given event id are no longer kept (the streams are
    capped): a watch resumed from it would silently miss some."""


class ActiveTrainingsCapReached(TrainConductorError):
    """The owner already has as many unfinished trainings as allowed."""

    def __init__(self, owner: str, cap: int) -> None:
        super().__init__(
            f"{owner} already has {cap} active trainings, the most allowed; "
            "wait for one to finish or cancel one"
        )
        self.owner = owner
        self.cap = cap


class StoreFull(TrainConductorError):
    """Redis refused a write for want of memory (an OOM error: its maxmemory
    is reached, and it evicts nothing). Retryable once memory is freed."""

    retryable = True


class TrainingRemoved(TrainingNotFound):
    """The training finished and was removed after the retention period;
    `owner` is whose it was, so that only who could see it is told so."""

    def __init__(self, training_id: str, owner: str) -> None:
        super().__init__(training_id, "it finished and was removed after the retention period")
        self.owner = owner


class RequestIdOfRemovedTraining(TrainConductorError):
    """A request id names a training that has since been removed after the
    retention period: a retry must not make a second training."""

    def __init__(self, request_id: str, training_id: str) -> None:
        super().__init__(
            f"request id {request_id!r} created training {training_id!r}, which finished and "
            "was removed after the retention period; a new training needs a new request id"
        )
        self.request_id = request_id
        self.training_id = training_id
