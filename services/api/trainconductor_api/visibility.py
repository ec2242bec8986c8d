"""Reads a training as the caller may see it: someone else's training, to a
caller who may not see it, is answered exactly as a missing one."""

from __future__ import annotations

from trainconductor_api.authorization import Access
from trainconductor_api.identity import current_identity
from trainconductor_core.errors import TrainingNotFound
from trainconductor_core.record import TrainingRecord
from trainconductor_core.store import TrainingStore


async def visible_training(
    store: TrainingStore, access: Access, training_id: str
) -> TrainingRecord:
    record = await store.get(training_id)
    if not access.may_see(current_identity(), record.owner):
        raise TrainingNotFound(training_id)
    return record
