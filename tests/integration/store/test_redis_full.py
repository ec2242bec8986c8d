"""A Redis out of memory (its maxmemory reached, nothing evicted): new
trainings are refused whole, everything else goes on, and creates work again
once retention has freed memory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis

from devstack import lifecycle
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from trainconductor_controller.retention import Retention
from trainconductor_core.errors import StoreFull
from trainconductor_core.kept_logs import KeptLog
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.redis_config import server_args
from trainconductor_core.store import TrainingStore, WriteResult
from trainconductor_core.store_metrics import REDIS_FULL

ROOM_BYTES = 1024 * 1024  # above what the empty Redis uses
DAY = 24 * 3600


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", server_args())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(full_redis: RedisServer) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(full_redis.url, decode_responses=True)
    used = (await client.info("memory"))["used_memory"]
    await client.config_set("maxmemory", used + ROOM_BYTES)
    yield client
    await client.aclose()


async def fill(
    client: aredis.Redis, store: TrainingStore, finished: StatusUpdate | None = None
) -> list[str]:
    """Records trainings until Redis is full, each `finished` so if given;
    returns their ids."""
    ids: list[str] = []
    while True:
        try:
            training, _ = await store.create(lora_spec(), owner="ada", request_id=f"f{len(ids)}")
        except StoreFull:
            # Just past the line, Redis's memory moves back and forth by the
            # clients' buffers: the line is drawn a little below, for good.
            used = (await client.info("memory"))["used_memory"]
            await client.config_set("maxmemory", used - 64 * 1024)
            return ids
        ids.append(training.id)
        if finished is not None:
            assert await store.write_status(training.id, finished) == WriteResult.CHANGED
        assert len(ids) < 100_000, "Redis never filled up: is maxmemory set?"


async def keys_and_lengths(client: aredis.Redis) -> dict[str, int]:
    """Every key with how much it holds (members, fields, entries, bytes)."""
    found: dict[str, int] = {}
    for key in await client.keys("*"):
        kind = str(await client.type(key))
        length = {"zset": client.zcard, "hash": client.hlen, "stream": client.xlen}.get(
            kind, client.strlen
        )
        found[str(key)] = await length(key)
    return found


async def test_a_full_redis_refuses_new_trainings_whole_and_serves_the_rest(
    client: aredis.Redis,
) -> None:
    store = TrainingStore(client, prefix="tc:")
    await store.ensure_consumer_group("controller")
    ids = await fill(client, store)
    assert await store.has_room() is False
    assert REDIS_FULL._value.get() == 1

    # Refused, and nothing of it written: not its request id, not a label index.
    before = await keys_and_lengths(client)
    with pytest.raises(StoreFull, match="out of memory"):
        await store.create(lora_spec(team="new"), owner="bob", request_id="late")
    assert await keys_and_lengths(client) == before

    # Reads, cancels, the controller's change feed and status writes go on.
    assert (await store.get(ids[0])).id == ids[0]
    page, _ = await store.list_page(page_size=10)
    assert len(page) == 10
    assert await store.training_events(ids[0], after="0")
    await store.ensure_consumer_group("controller")  # a new leader's start
    changes = await store.read_changes("controller", "c-0", count=10)
    await store.ack_changes("controller", [c.entry_id for c in changes])
    await lifecycle.start(store, ids[0], start_ms=int(time.time() * 1000))
    assert (await store.get(ids[0])).phase == Phase.RUNNING
    _, changed = await store.cancel(ids[1])
    assert changed
    # The end of a log is not kept (the controller goes on without it).
    before = await keys_and_lengths(client)
    with pytest.raises(StoreFull):
        await store.keep_logs(ids[2], [KeptLog(0, 1, "pod", "x" * 100_000)])
    assert await keys_and_lengths(client) == before


async def test_creates_work_again_once_retention_has_freed_memory(
    client: aredis.Redis,
) -> None:
    store = TrainingStore(client, prefix="tc:")
    canceled = StatusUpdate(
        1, Phase.CANCELED, "Canceled", "canceled on request", finish_time_ms=int(time.time() * 1000)
    )
    ids = await fill(client, store, canceled)
    assert await store.has_room() is False

    removed = await Retention(
        store,
        retention_seconds=DAY,
        tombstone_seconds=DAY,
        interval_seconds=60,
        batch=100,
        rate_per_second=1e9,
        clock=lambda: time.time() + 2 * DAY,
    ).run_pass()
    assert removed.removed == len(ids)
    assert await store.has_room() is True
    assert REDIS_FULL._value.get() == 0
    training, created = await store.create(lora_spec(), owner="ada", request_id="after")
    assert created
    assert (await store.get(training.id)).phase == Phase.PENDING
