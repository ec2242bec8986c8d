"""The store sends the short commands of concurrent calls together: a busy
service holds one Redis connection, not one per call in flight, and each call
still gets its own reply, its own error, and exactly one write."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from trainconductor_core.auto_pipeline import MAX_BATCH, AutoPipeline
from trainconductor_core.errors import StoreUnavailable, TrainingNotFound
from trainconductor_core.store import ListFilter, TrainingStore

CALLS = 200


@pytest.fixture
async def named_store(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[TrainingStore]:
    """A store whose connections carry a name, to count them in CLIENT LIST."""
    client = redis.Redis.from_url(
        redis_server.url, client_name=f"{key_prefix}store", decode_responses=True
    )
    store = TrainingStore(client, prefix=key_prefix)
    yield store
    await store.close()


async def _connections_named(redis_server: RedisServer, name: str) -> int:
    async with redis.Redis.from_url(redis_server.url, decode_responses=True) as admin:
        clients = await admin.client_list()
    return sum(1 for client in clients if client["name"] == name)


async def test_concurrent_calls_share_a_connection_and_each_gets_its_own_reply(
    named_store: TrainingStore, redis_server: RedisServer, key_prefix: str
) -> None:
    made = await asyncio.gather(
        *(named_store.create(lora_spec(), owner=f"user{n % 7}") for n in range(CALLS))
    )
    read = await asyncio.gather(*(named_store.get(training.id) for training, _ in made))

    assert [training.id for training in read] == [training.id for training, _ in made]
    assert [training.owner for training in read] == [f"user{n % 7}" for n in range(CALLS)]
    page, _ = await named_store.list_page(page_size=CALLS + 1)
    assert len(page) == CALLS, "one training per create, no more"
    # One call at a time would have needed a connection per call in flight.
    assert await _connections_named(redis_server, f"{key_prefix}store") <= 2


async def test_an_error_reply_fails_only_its_own_call(
    named_store: TrainingStore, redis_server: RedisServer, key_prefix: str
) -> None:
    made = [await named_store.create(lora_spec(), owner="ada") for _ in range(3)]
    async with redis.Redis.from_url(redis_server.url) as admin:
        await admin.set(f"{key_prefix}training:not-a-hash", "x")

    ids = [made[0][0].id, "not-a-hash", made[1][0].id, "missing", made[2][0].id]
    results = await asyncio.gather(*(named_store.get(i) for i in ids), return_exceptions=True)

    assert isinstance(results[1], ResponseError)
    assert "WRONGTYPE" in str(results[1])
    assert isinstance(results[3], TrainingNotFound)
    assert [getattr(r, "id", None) for r in results[0::2]] == [m[0].id for m in made]


async def test_values_reach_redis_as_given_and_a_value_redis_can_not_take_fails_its_own_call(
    redis_server: RedisServer, key_prefix: str
) -> None:
    values: dict[str, str | bytes | int | float] = {
        "text": "naïve ✓ 学习",
        "bytes": bytes(range(256)),
        "int": -42,
        "float": 0.1,
        "large": "x" * 100_000,  # past the size at which values are no longer copied
    }
    async with redis.Redis.from_url(redis_server.url) as client:
        pipeline = AutoPipeline(client)
        writes = [pipeline.execute("SET", f"{key_prefix}{k}", v) for k, v in values.items()]
        results = await asyncio.gather(
            pipeline.execute("SET", f"{key_prefix}flag", True),
            *writes,
            pipeline.execute("CONFIG GET", "maxmemory-policy"),  # a command of two words
            return_exceptions=True,
        )
        stored = await client.mget([f"{key_prefix}{k}" for k in values])
        flag = await client.exists(f"{key_prefix}flag")
        await pipeline.close()

    assert isinstance(results[0], DataError), results[0]
    assert results[1:-1] == [True] * len(values)
    assert results[-1] == {"maxmemory-policy": "noeviction"}  # shaped by its callback
    assert stored == [
        "naïve ✓ 学习".encode(),
        bytes(range(256)),
        b"-42",
        b"0.1",
        b"x" * 100_000,
    ]
    assert flag == 0


async def test_creates_go_on_after_redis_forgets_its_scripts(
    named_store: TrainingStore, redis_server: RedisServer
) -> None:
    await named_store.create(lora_spec(), owner="ada")  # the script is cached
    async with redis.Redis.from_url(redis_server.url) as admin:
        await admin.script_flush()  # as after a restart or a failover

    made = await asyncio.gather(
        *(named_store.create(lora_spec(), owner="ada", request_id=f"r{n}") for n in range(20))
    )

    assert all(created for _, created in made)
    page, _ = await named_store.list_page(page_size=50, where=ListFilter(owner="ada"))
    assert len(page) == 21, "each create ran once"


async def test_a_caller_that_stops_waiting_leaves_the_others_their_replies(
    named_store: TrainingStore,
) -> None:
    training, _ = await named_store.create(lora_spec(), owner="ada")
    calls = [asyncio.ensure_future(named_store.get(training.id)) for _ in range(10)]
    calls[3].cancel()

    results = await asyncio.gather(*calls, return_exceptions=True)

    assert isinstance(results[3], asyncio.CancelledError)
    assert [getattr(r, "id", None) for r in results[:3] + results[4:]] == [training.id] * 9
    assert (await named_store.get(training.id)).id == training.id


async def test_a_create_given_up_before_it_is_sent_records_nothing(
    named_store: TrainingStore,
) -> None:
    first, _ = await named_store.create(lora_spec(), owner="ada")  # Redis has the script
    given_up = asyncio.ensure_future(named_store.create(lora_spec(), owner="ada"))
    await asyncio.sleep(0)  # the create has queued its command, not sent it
    given_up.cancel()
    kept, _ = await named_store.create(lora_spec(), owner="ada")

    with pytest.raises(asyncio.CancelledError):
        await given_up
    page, _ = await named_store.list_page(page_size=10)
    assert [training.id for training in page] == [kept.id, first.id]


async def test_calls_queued_behind_a_pipeline_of_given_up_calls_get_their_replies(
    named_store: TrainingStore,
) -> None:
    training, _ = await named_store.create(lora_spec(), owner="ada")
    given_up = [asyncio.ensure_future(named_store.get(training.id)) for _ in range(MAX_BATCH)]
    behind = [asyncio.ensure_future(named_store.get(training.id)) for _ in range(10)]
    await asyncio.sleep(0)  # every call has queued its command
    for call in given_up:
        call.cancel()

    read = await asyncio.wait_for(asyncio.gather(*behind), timeout=10)

    assert [r.id for r in read] == [training.id] * 10


async def test_a_redis_that_stops_answering_fails_the_call_within_the_timeout_and_is_used_again(
    tmp_path: Path, key_prefix: str
) -> None:
    """A Redis that hangs (stopped, not gone: the connection stays open)
    fails each call as unavailable within the socket timeout and its one
    retry, not for ever; answering again, it serves the next call. The
    connection goes back to the pool with its own timeout."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    client = redis.Redis.from_url(
        server.url,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        decode_responses=True,
    )
    store = TrainingStore(client, prefix=key_prefix)
    try:
        training, _ = await store.create(lora_spec(), owner="ada")
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="TimeoutError"):
                await asyncio.wait_for(store.get(training.id), timeout=30)
            # Two tries of 0.5 s each; generous, as a busy machine is slow.
            assert time.monotonic() - started < 10
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert (await store.get(training.id)).id == training.id
    finally:
        await store.close()
        server.stop()
    pooled = client.connection_pool._available_connections  # what the next caller gets
    assert pooled, "the store's connection went back to the pool"
    assert {connection.socket_timeout for connection in pooled} == {0.5}
