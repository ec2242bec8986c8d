"""The Python client against the real API: retries, and watches that survive
the API going away."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.ports import free_port
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import api_settings
from trainconductor_api import metrics
from trainconductor_api.server import build_server
from trainconductor_client import Client, InvalidArgument, NotFound
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore, open_store


async def test_a_watch_resumes_across_an_api_restart_losing_and_repeating_nothing(
    redis_server: RedisServer, key_prefix: str, store: TrainingStore
) -> None:
    port = free_port()
    settings = api_settings(redis_server, key_prefix, grpc_port=port)
    api = build_server(settings, serve_metrics=False)
    await api.start()
    training, _ = await store.create(lora_spec(), owner="anonymous")
    received: list[pb.TrainingEvent] = []
    two_seen = threading.Event()

    def follow() -> None:
        with Client(f"127.0.0.1:{port}", retries=20) as client:
            for event in client.watch(training.id):
                received.append(event)
                if len(received) == 2:
                    two_seen.set()

    following = asyncio.create_task(asyncio.to_thread(follow))
    await store.write_status(training.id, StatusUpdate(1, Phase.QUEUED, "Queued", ""))
    assert await asyncio.to_thread(two_seen.wait, 10)

    await api.drain_and_stop()  # the stream breaks; the client retries
    await store.write_status(training.id, StatusUpdate(1, Phase.RUNNING, "Running", ""))
    await asyncio.sleep(0.5)
    api = build_server(settings, serve_metrics=False)
    await api.start()
    await store.write_status(training.id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
    await asyncio.wait_for(following, timeout=30)
    await api.drain_and_stop()

    assert [e.phase for e in received] == [
        pb.PHASE_PENDING,
        pb.PHASE_QUEUED,
        pb.PHASE_RUNNING,
        pb.PHASE_COMPLETED,
    ]
    assert len({e.event_id for e in received}) == 4


async def test_watching_all_loses_nothing_made_while_a_quiet_stream_reconnected(
    redis_server: RedisServer, key_prefix: str, store: TrainingStore
) -> None:
    """A watch of all trainings starts "from now". When its stream breaks
    before any event came, the client resumes from where the stream began
    (the API says, in the stream's initial metadata), not from a new "now"
    that would skip what happened while it was away."""
    port = free_port()
    settings = api_settings(redis_server, key_prefix, grpc_port=port)
    api = build_server(settings, serve_metrics=False)
    await api.start()
    following, received = await _following_all(port)
    try:
        await api.drain_and_stop()  # the quiet stream breaks; the client retries
        made_meanwhile, _ = await store.create(lora_spec(), owner="anonymous")
        api = build_server(settings, serve_metrics=False)
        await api.start()
        await asyncio.wait_for(following, timeout=30)
    finally:
        await api.drain_and_stop()

    assert [(e.training_id, e.phase) for e in received] == [(made_meanwhile.id, pb.PHASE_PENDING)]


async def test_watching_one_owner_resumes_past_the_events_it_skipped(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """A watch of one owner's trainings shows few of all events. Once another
    owner's many events have made the cap on kept events trim the last one
    it showed, the client resumes from the API's bookmarks instead: a
    reconnect goes on rather than failing OUT_OF_RANGE."""
    port = free_port()
    settings = api_settings(
        redis_server, key_prefix, grpc_port=port, all_events_cap=10, training_events_cap=10
    )
    store = open_store(settings)
    api = build_server(settings, serve_metrics=False)
    await api.start()
    mine, _ = await store.create(lora_spec(), owner="ada")
    shown = await store.last_event_id()
    following, received = await _following_all(port, owner="ada", after_event_id=shown)
    try:
        others, _ = await store.create(lora_spec(), owner="bob")
        for step in range(250):  # trims ada's event: trimming goes by nodes of 100
            await store.write_status(
                others.id, StatusUpdate(1, Phase.RUNNING, "Running", str(step))
            )
        # The watch polls every 0.2 s and sends a bookmark after a quiet poll,
        # so the last one comes about 0.4 s after the last write; nothing
        # outside the client says when it has it.
        await asyncio.sleep(2)
        await api.drain_and_stop()  # the stream breaks; the client reconnects
        api = build_server(settings, serve_metrics=False)
        await api.start()
        await store.write_status(mine.id, StatusUpdate(1, Phase.QUEUED, "JobCreated", ""))
        await asyncio.wait_for(following, timeout=30)
    finally:
        await api.drain_and_stop()
        await store.close()

    assert [(e.training_id, e.phase) for e in received] == [(mine.id, pb.PHASE_QUEUED)]


async def _following_all(
    port: int, *, owner: str = "", after_event_id: str = ""
) -> tuple[asyncio.Task[None], list[pb.TrainingEvent]]:
    """A client watching all trainings in a thread, returned once the API has
    the watch open; the task ends at the first event, which the list holds."""
    received: list[pb.TrainingEvent] = []

    def follow() -> None:
        with Client(f"127.0.0.1:{port}", retries=20) as client:
            for event in client.watch_all(owner=owner, after_event_id=after_event_id, timeout=30):
                received.append(event)
                return

    before = _watches_of_all()
    following = asyncio.create_task(asyncio.to_thread(follow))
    await _watch_of_all_opened(before)
    return following, received


def _watches_of_all() -> float:
    """Open watches of all trainings in this process (earlier tests' may linger)."""
    value = metrics.registry.get_sample_value(
        "trainconductor_api_active_watches", {"grpc_method": "WatchTrainings"}
    )
    return value or 0.0


async def _watch_of_all_opened(before: float) -> None:
    deadline = time.monotonic() + 10
    while _watches_of_all() <= before:
        assert time.monotonic() < deadline, "the watch never opened"
        await asyncio.sleep(0.05)


async def test_errors_carry_the_code_and_the_fields(
    redis_server: RedisServer, key_prefix: str
) -> None:
    port = free_port()
    api = build_server(api_settings(redis_server, key_prefix, grpc_port=port), serve_metrics=False)
    await api.start()

    def calls() -> None:
        with Client(f"127.0.0.1:{port}") as client:
            bad = lora_spec()
            bad.parameters.num_train_epochs = -1
            with pytest.raises(InvalidArgument) as invalid:
                client.create(bad)
            assert [v.field for v in invalid.value.violations] == [
                "spec.parameters.num_train_epochs"
            ]
            with pytest.raises(NotFound):
                client.get("0" * 20)
            created = client.create(lora_spec(), request_id="same")
            assert client.create(lora_spec(), request_id="same").id == created.id
            assert [t.id for t in client.list()] == [created.id]

    try:
        await asyncio.to_thread(calls)
    finally:
        await api.drain_and_stop()


async def test_a_quiet_watch_outlives_the_apis_connection_age(
    redis_server: RedisServer, key_prefix: str, store: TrainingStore
) -> None:
    """The API closes each connection after its age (to rebalance clients),
    letting calls run on for the grace: a watch of a training that stays
    quiet for hours is cut that often, and each cut is no failure."""
    port = free_port()
    settings = api_settings(
        redis_server, key_prefix, grpc_port=port, max_connection_age_seconds=2, drain_seconds=4
    )
    api = build_server(settings, serve_metrics=False)
    await api.start()
    training, _ = await store.create(lora_spec(), owner="anonymous")

    def follow() -> list[int]:
        # One retry only: two cuts in a row counted as failures would end it.
        with Client(f"127.0.0.1:{port}", retries=1) as client:
            return [event.phase for event in client.watch(training.id)]

    try:
        following = asyncio.create_task(asyncio.to_thread(follow))
        await asyncio.sleep(14)  # two connection ages and their graces, and more
        assert not following.done(), following.result()
        await store.write_status(training.id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
        assert await asyncio.wait_for(following, timeout=10) == [
            pb.PHASE_PENDING,
            pb.PHASE_COMPLETED,
        ]
    finally:
        await api.drain_and_stop()


async def test_waiting_ends_at_its_timeout_though_nothing_happens(
    redis_server: RedisServer, key_prefix: str, store: TrainingStore
) -> None:
    port = free_port()
    api = build_server(api_settings(redis_server, key_prefix, grpc_port=port), serve_metrics=False)
    await api.start()
    training, _ = await store.create(lora_spec(), owner="anonymous")

    def wait() -> float:
        with Client(f"127.0.0.1:{port}") as client:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"did not finish within 1\.5s"):
                client.wait(training.id, timeout=1.5)
            return time.monotonic() - started

    try:
        assert 1.5 <= await asyncio.to_thread(wait) < 5
    finally:
        await api.drain_and_stop()
