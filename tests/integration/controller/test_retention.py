"""Retention on a real Redis: a pass removes exactly the trainings that
finished more than the retention period ago, with every key and index entry
of theirs, never an unfinished one; a pass cut off after a few batches (its
leader gone) is finished by the next leader's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aredis

from devstack import lifecycle
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from trainconductor_controller.retention import Retention
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import Removal, TrainingStore

DAY = 24 * 3600
RETENTION = 30 * DAY
TOMBSTONE = 7 * DAY
REQUEST_ID_TTL = 60 * DAY
# Times are the store's clock, set per write; the Redis's own clock (stream
# entry ids) is now, so the trainings are recorded in the past.
NOW = time.time()
LONG_AGO = NOW - 60 * DAY

Snapshot = dict[str, object]


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Population:
    expired: dict[str, str] = field(default_factory=dict)  # id: owner
    kept: set[str] = field(default_factory=set)


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store_for(
    client: aredis.Redis, key_prefix: str, clock: Clock
) -> Callable[[aredis.Redis], TrainingStore]:
    def store(on: aredis.Redis = client) -> TrainingStore:
        return TrainingStore(
            on, prefix=key_prefix, clock=clock, request_id_ttl_seconds=REQUEST_ID_TTL
        )

    return store


def retention(store: TrainingStore, clock: Clock, **overrides: object) -> Retention:
    options: dict[str, object] = {
        "retention_seconds": RETENTION,
        "tombstone_seconds": TOMBSTONE,
        "interval_seconds": 600.0,
        "batch": 10,
        "rate_per_second": 1e9,
    }
    options.update(overrides)
    return Retention(store, clock=clock, **options)  # type: ignore[arg-type]


async def _training(
    store: TrainingStore, clock: Clock, number: int, *, recorded: float, phase: Phase | None,
    finished: float | None = None,
) -> str:  # fmt: skip
    """A training recorded at `recorded`, taken to `phase` (None: left
    PENDING), finished at `finished` when `phase` is final."""
    clock.now = recorded
    spec = lora_spec(team="nlp", run=f"r{number % 3}")
    training, _ = await store.create(spec, owner=f"user{number % 4}", request_id=f"rq{number}")
    if phase in (Phase.QUEUED, Phase.RUNNING, Phase.COMPLETED, Phase.FAILED):
        await lifecycle.start(store, training.id, start_ms=int(recorded * 1000))
    if phase is Phase.QUEUED:
        await store.write_status(training.id, StatusUpdate(1, Phase.QUEUED, "Unschedulable", ""))
    if phase is not None and phase.is_final:
        assert finished is not None
        clock.now = finished
        await lifecycle.finish(store, training.id, phase, finish_ms=int(finished * 1000))
    clock.now = NOW
    return training.id


async def populate(store: TrainingStore, clock: Clock, expired: int = 24) -> Population:
    population = Population()
    final = [Phase.COMPLETED, Phase.FAILED, Phase.CANCELED]
    for n in range(expired):
        training_id = await _training(
            store, clock, n, recorded=LONG_AGO + n, phase=final[n % 3], finished=LONG_AGO + 3600
        )
        population.expired[training_id] = f"user{n % 4}"
    kept = [
        # Recorded before the cutoff, finished after it: a long run.
        dict(recorded=LONG_AGO, phase=Phase.COMPLETED, finished=NOW - 10 * DAY),
        # Finished just inside the period.
        dict(recorded=NOW - 31 * DAY, phase=Phase.FAILED, finished=NOW - RETENTION + 60),
        dict(recorded=NOW - 5 * DAY, phase=Phase.CANCELED, finished=NOW - 4 * DAY),
        # Unfinished, however old.
        dict(recorded=LONG_AGO, phase=Phase.RUNNING),
        dict(recorded=LONG_AGO, phase=Phase.QUEUED),
        dict(recorded=LONG_AGO, phase=None),
    ]
    for n, how in enumerate(kept, start=1000):
        population.kept.add(await _training(store, clock, n, **how))  # type: ignore[arg-type]
    # Unfinished, with its cancellation asked long ago but not yet done.
    canceling = await _training(store, clock, 2000, recorded=LONG_AGO, phase=Phase.RUNNING)
    await store.cancel(canceling)
    population.kept.add(canceling)
    return population


async def snapshot(client: aredis.Redis, prefix: str) -> Snapshot:
    """Every key under the prefix with what it holds: members of a sorted
    set, fields of a hash, entry ids of a stream, a string's value."""
    found: Snapshot = {}
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        kind = await client.type(key)
        if kind == "zset":
            found[key] = frozenset(await client.zrange(key, 0, -1))
        elif kind == "hash":
            found[key] = await client.hgetall(key)
        elif kind == "stream":
            found[key] = [entry_id for entry_id, _ in await client.xrange(key)]
        else:
            found[key] = await client.get(key)
    return found


def without(before: Snapshot, prefix: str, removed: dict[str, str]) -> Snapshot:
    """What `before` should become once `removed` are: their hashes and event
    streams gone, their ids out of every index (an emptied index goes), a
    tombstone naming each one's owner. Request-id keys stay till they expire;
    the capped streams of all trainings stay as they are."""
    expected: Snapshot = {}
    own_keys = {f"{prefix}{kind}:{i}" for i in removed for kind in ("training", "events")}
    for key, value in before.items():
        if key in own_keys:
            continue
        if isinstance(value, frozenset):
            value = value - removed.keys()
            if not value:
                continue
        expected[key] = value
    for training_id, owner in removed.items():
        expected[f"{prefix}removed:{training_id}"] = owner
    return expected


async def test_a_pass_removes_exactly_the_expired_finished_trainings_and_all_of_them(
    client: aredis.Redis,
    key_prefix: str,
    clock: Clock,
    store_for: Callable[..., TrainingStore],
) -> None:
    store = store_for()
    population = await populate(store, clock)
    before = await snapshot(client, key_prefix)

    result = await retention(store, clock).run_pass()

    assert result.removed == len(population.expired)
    assert await snapshot(client, key_prefix) == without(before, key_prefix, population.expired)
    for training_id in population.expired:
        assert 0 < await client.ttl(f"{key_prefix}removed:{training_id}") <= TOMBSTONE
    # Another pass finds nothing more to do.
    assert (await retention(store, clock).run_pass()).removed == 0


async def test_a_training_without_a_finish_time_is_taken_as_finished_at_its_last_event(
    client: aredis.Redis,
    key_prefix: str,
    clock: Clock,
    store_for: Callable[..., TrainingStore],
) -> None:
    # Records of an earlier release may have no finish time.
    store = store_for()
    with_events, without_events = [
        await _training(store, clock, n, recorded=LONG_AGO, phase=Phase.FAILED, finished=LONG_AGO)
        for n in range(2)
    ]
    for training_id in (with_events, without_events):
        await client.hdel(f"{key_prefix}training:{training_id}", "finish_time")
    # Its last event is now (the Redis's own clock): kept. With no event
    # left, its record time is all there is: removed.
    await client.delete(f"{key_prefix}events:{without_events}")
    await retention(store, clock).run_pass()
    assert await client.exists(f"{key_prefix}training:{with_events}")
    assert not await client.exists(f"{key_prefix}training:{without_events}")


async def test_the_script_reads_again_and_never_removes_an_unfinished_training(
    key_prefix: str, clock: Clock, store_for: Callable[..., TrainingStore]
) -> None:
    # As if the caller had read it as finished long ago.
    store = store_for()
    running = await _training(store, clock, 1, recorded=LONG_AGO, phase=Phase.RUNNING)
    outcomes = await store.remove_finished(
        Phase.COMPLETED, [running], finished_by_ms=int(NOW * 1000), tombstone_seconds=TOMBSTONE
    )
    assert outcomes == [Removal.KEPT]
    assert (await store.get(running)).phase == Phase.RUNNING


async def test_a_pass_cut_off_after_some_batches_is_finished_by_the_next_leader(
    redis_server: RedisServer,
    client: aredis.Redis,
    key_prefix: str,
    clock: Clock,
    store_for: Callable[..., TrainingStore],
) -> None:
    population = await populate(store_for(), clock, expired=60)
    before = await snapshot(client, key_prefix)

    # The first leader's connection, and a pace that stops for good after
    # its third batch: there its process is killed.
    first_client = aredis.Redis.from_url(redis_server.url, decode_responses=True)
    batches_done = asyncio.Event()
    paces = 0

    async def pace(_: float) -> None:
        nonlocal paces
        paces += 1
        if paces == 3:
            batches_done.set()
            await asyncio.Event().wait()

    first = asyncio.create_task(retention(store_for(first_client), clock, sleep=pace).run_pass())
    await asyncio.wait_for(batches_done.wait(), timeout=30)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await first_client.aclose()

    # Cut off: some removed, the rest whole, each training all or nothing.
    middle = await snapshot(client, key_prefix)
    removed = {i: o for i, o in population.expired.items() if f"{key_prefix}removed:{i}" in middle}
    assert 0 < len(removed) < len(population.expired)
    assert middle == without(before, key_prefix, removed)

    # The next leader, on a connection of its own, finishes the work.
    second_client = aredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        result = await retention(store_for(second_client), clock).run_pass()
    finally:
        await second_client.aclose()
    assert result.removed == len(population.expired) - len(removed)
    assert await snapshot(client, key_prefix) == without(before, key_prefix, population.expired)


async def test_no_retention_keeps_everything(
    client: aredis.Redis,
    key_prefix: str,
    clock: Clock,
    store_for: Callable[..., TrainingStore],
) -> None:
    store = store_for()
    await populate(store, clock, expired=3)
    before = await snapshot(client, key_prefix)
    keeper = retention(store, clock, retention_seconds=0)
    await keeper.run()  # returns at once: nothing to do, ever
    assert (await keeper.run_pass()).removed == 0
    assert await snapshot(client, key_prefix) == before
