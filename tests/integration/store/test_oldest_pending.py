"""The oldest PENDING training, which the stuck-PENDING alert watches."""

from __future__ import annotations

from devstack.specs import lora_spec
from trainconductor_core.ids import created_ms
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore


async def test_the_oldest_pending_training_is_the_earliest_submitted_still_pending(
    store: TrainingStore,
) -> None:
    assert await store.oldest_in_phase(Phase.PENDING) is None
    first, _ = await store.create(lora_spec(), owner="ada")
    second, _ = await store.create(lora_spec(), owner="bob")
    assert await store.oldest_in_phase(Phase.PENDING) == first.id
    assert created_ms(first.id) == first.create_time_ms

    await store.write_status(first.id, StatusUpdate(1, Phase.QUEUED, "JobCreated", ""))
    assert await store.oldest_in_phase(Phase.PENDING) == second.id
    assert await store.oldest_in_phase(Phase.QUEUED) == first.id
