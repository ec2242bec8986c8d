"""What a finished training keeps in Redis: its record without what only an
unfinished one needs, its last events under their own ids, and at most 3 KB
of memory in all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis

from devstack import lifecycle
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from trainconductor_core.errors import HistoryTrimmed
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore

TRAININGS = 1000
NOW_MS = 1_750_000_000_000
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


@pytest.fixture
async def client(tuned_redis: RedisServer) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(tuned_redis.url, decode_responses=True)
    yield client
    await client.aclose()


async def _finished(store: TrainingStore, number: int, phase: Phase = Phase.COMPLETED) -> str:
    spec = lora_spec(team="nlp", project=f"p{number % 20}")
    training, _ = await store.create(
        spec, owner=f"user{number % 50}", request_id=f"r{number}", trace_context=TRACE
    )
    await lifecycle.start(store, training.id, start_ms=NOW_MS)
    await lifecycle.finish(store, training.id, phase, finish_ms=NOW_MS + 1000)
    return training.id


async def test_a_finished_training_takes_at_most_3_kb(
    client: aredis.Redis, key_prefix: str
) -> None:
    # The streams of all trainings are capped, so past their caps they cost
    # nothing per training: kept small here so that they do not count.
    store = TrainingStore(client, prefix=key_prefix, change_feed_cap=10, all_events_cap=10)
    await _finished(store, -1)  # the scripts loaded, the indexes made
    before = (await client.info("memory"))["used_memory"]
    for start in range(0, TRAININGS, 100):
        await asyncio.gather(*(_finished(store, n) for n in range(start, start + 100)))
    after = (await client.info("memory"))["used_memory"]
    per_training = (after - before) / TRAININGS
    # Its hash, its events, its entries in five indexes, its request id.
    assert per_training <= 3000, f"{per_training:.0f} bytes per finished training"


async def test_a_finished_training_keeps_its_last_events_under_their_ids(
    client: aredis.Redis, key_prefix: str
) -> None:
    store = TrainingStore(client, prefix=key_prefix, finished_events_kept=5)
    training, _ = await store.create(lora_spec(), owner="ada", trace_context=TRACE)
    for step in range(30):
        await store.write_status(
            training.id, StatusUpdate(1, Phase.RUNNING, "Running", f"epoch {step}")
        )
    written = await store.training_events(training.id, after="0")
    await lifecycle.finish(store, training.id, Phase.FAILED, finish_ms=None)

    kept = await store.training_events(training.id, after="0")
    assert [e.event_id for e in kept[:-1]] == [e.event_id for e in written[-4:]]
    assert kept[-1].phase == Phase.FAILED
    # A watch resumed before what is kept is told that it missed events;
    # one resumed within it reads on.
    with pytest.raises(HistoryTrimmed):
        await store.check_events_kept(written[0].event_id, training.id)
    await store.check_events_kept(kept[0].event_id, training.id)
    assert await store.training_events(training.id, after=kept[-2].event_id) == kept[-1:]


async def test_a_finished_training_drops_its_trace_context_and_has_a_finish_time(
    client: aredis.Redis, key_prefix: str
) -> None:
    store = TrainingStore(client, prefix=key_prefix, clock=lambda: NOW_MS / 1000)
    training, _ = await store.create(lora_spec(), owner="ada", trace_context=TRACE)
    await lifecycle.start(store, training.id, start_ms=NOW_MS)
    assert (await store.get(training.id)).trace_context == TRACE
    # The status names no finish time: the store's clock gives it.
    await lifecycle.finish(store, training.id, Phase.CANCELED, finish_ms=None)
    record = await store.get(training.id)
    assert record.trace_context == {}
    assert record.finish_time_ms == NOW_MS


async def test_a_finished_training_still_takes_a_status_of_its_final_phase(
    client: aredis.Redis, key_prefix: str
) -> None:
    store = TrainingStore(client, prefix=key_prefix)
    training_id = await _finished(store, 1)
    update = StatusUpdate(1, Phase.COMPLETED, "Completed", "the training completed; Job deleted")
    await store.write_status(training_id, update)
    events = await store.training_events(training_id, after="0")
    assert events[-1].message == "the training completed; Job deleted"
    assert (await store.get(training_id)).message == update.message
