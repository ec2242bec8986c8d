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

    def __init__(self, training_id: str) -> None:
        super().__init__(f"training {training_id!r} not found")
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
