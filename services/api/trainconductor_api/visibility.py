"""Reads a training as the caller may see it: someone else's training, to a
caller who may not see it, is answered exactly as a missing one; and so is
a training removed after the retention period, to whoever could not have
seen it."""

from __future__ import annotations

from trainconductor_api.authorization import Access
from trainconductor_api.identity import current_identity
from trainconductor_core.errors import TrainingNotFound, TrainingRemoved
from trainconductor_core.record import TrainingRecord
from trainconductor_core.store import TrainingStore


async def visible_training(
    store: TrainingStore, access: Access, training_id: str
) -> TrainingRecord:
    try:
        record = await store.get(training_id)
    except TrainingRemoved as removed:
        if not access.may_see(current_identity(), removed.owner):
            raise TrainingNotFound(training_id) from None
        raise
    if not access.may_see(current_identity(), record.owner):
        raise TrainingNotFound(training_id)
    return record
