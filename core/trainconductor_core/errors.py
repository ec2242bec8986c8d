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
