"""The store both services open (`open_store`) trims events by the caps of
their settings: the controller writes most of the events, so its store must
trim as the API's does."""

from __future__ import annotations

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import TrainingStore, open_store

WRITES = 250


async def _events_kept(store: TrainingStore) -> tuple[int, int]:
    """Writes WRITES statuses to a new training; returns how many of its
    events the training's stream and the stream of all events keep."""
    training, _ = await store.create(lora_spec(), owner="ada")
    for step in range(WRITES):
        await store.write_status(
            training.id, StatusUpdate(1, Phase.RUNNING, "Running", f"step {step}")
        )
    own = len(await _read_all(store, training.id))
    every = len(await _read_all(store, None))
    return own, every


async def _read_all(store: TrainingStore, training_id: str | None) -> list[str]:
    ids: list[str] = []
    after = "0"
    while True:
        if training_id is None:
            events = await store.all_events(after=after)
        else:
            events = await store.training_events(training_id, after=after)
        if not events:
            return ids
        ids += [event.event_id for event in events]
        after = ids[-1]


async def test_the_store_of_the_settings_trims_events_by_their_caps(
    redis_server: RedisServer, key_prefix: str
) -> None:
    settings = CommonSettings(
        redis_url=redis_server.url,
        redis_key_prefix=key_prefix,
        training_events_cap=10,
        all_events_cap=10,
    )
    store = open_store(settings)
    try:
        own, every = await _events_kept(store)
    finally:
        await store.close()
    # Trimming is approximate, by whole stream nodes of 100 entries: what is
    # kept is at least the cap and far below what was written.
    assert 10 <= own < WRITES / 2
    assert 10 <= every < WRITES / 2


async def test_the_default_caps_keep_every_event_of_a_training_this_short(
    redis_server: RedisServer, key_prefix: str
) -> None:
    store = open_store(CommonSettings(redis_url=redis_server.url, redis_key_prefix=key_prefix))
    try:
        own, every = await _events_kept(store)
    finally:
        await store.close()
    assert own == every == WRITES + 1  # and the event of its submission
