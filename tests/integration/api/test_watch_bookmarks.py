"""Bookmarks of a watch of all trainings: where to resume once events the
watch does not show went by, so that the cap on kept events does not end it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import api_settings
from trainconductor_api.server import ApiServer, build_server
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore, open_store

Stub: TypeAlias = "pb_grpc.TrainingServiceAsyncStub"
# Few enough that the events of one training of another owner trim the one
# this watch showed (trimming goes by whole stream nodes of 100 entries).
CAP = 10
OTHERS_EVENTS = 250


@pytest.fixture
async def capped_api(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[ApiServer]:
    settings = api_settings(redis_server, key_prefix, all_events_cap=CAP, training_events_cap=CAP)
    api = build_server(settings, serve_metrics=False)
    await api.start()
    yield api
    await api.drain_and_stop()


@pytest.fixture
async def capped_store(capped_api: ApiServer) -> AsyncIterator[TrainingStore]:
    store = open_store(capped_api.settings)
    yield store
    await store.close()


@pytest.fixture
async def stub(capped_api: ApiServer) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{capped_api.port}") as channel:
        yield pb_grpc.TrainingServiceStub(channel)


async def _others_busy(store: TrainingStore) -> str:
    """Another owner's training goes through many statuses; returns the id
    of the last event."""
    others, _ = await store.create(lora_spec(), owner="bob")
    for step in range(OTHERS_EVENTS):
        await store.write_status(others.id, StatusUpdate(1, Phase.RUNNING, "Running", str(step)))
    return await store.last_event_id()


async def _responses_until_quiet(
    stream: grpc.aio.UnaryStreamCall[pb.WatchTrainingsRequest, pb.WatchTrainingsResponse],
    quiet_seconds: float,
) -> list[pb.WatchTrainingsResponse]:
    responses: list[pb.WatchTrainingsResponse] = []
    while True:
        try:
            response = await asyncio.wait_for(stream.read(), quiet_seconds)
        except TimeoutError:
            return responses
        assert isinstance(response, pb.WatchTrainingsResponse)
        responses.append(response)


async def test_a_watch_of_one_owner_is_told_where_to_resume_past_what_it_skipped(
    stub: Stub, capped_store: TrainingStore
) -> None:
    mine, _ = await capped_store.create(lora_spec(), owner="ada")
    shown = await capped_store.last_event_id()  # the last event ada's watch shows
    stream = stub.WatchTrainings(
        pb.WatchTrainingsRequest(owner="ada", after_event_id=shown, bookmarks=True)
    )
    await stream.initial_metadata()  # sent once the watch has checked where it starts
    last = await _others_busy(capped_store)

    responses = await _responses_until_quiet(stream, quiet_seconds=2)
    stream.cancel()
    assert responses, "no bookmark within 2 s (the watch polls every 0.2 s)"
    assert all(not r.HasField("event") for r in responses)
    assert responses[-1].bookmark_event_id == last
    assert len(responses) < OTHERS_EVENTS, "one bookmark per quiet poll period, at most"

    # Resuming where ada's watch last showed an event is too late now; from
    # the bookmark, it goes on, and shows what happens to ada's training.
    with pytest.raises(grpc.aio.AioRpcError) as trimmed:
        await stub.WatchTrainings(
            pb.WatchTrainingsRequest(owner="ada", after_event_id=shown)
        ).read()
    assert trimmed.value.code() == grpc.StatusCode.OUT_OF_RANGE
    resumed = stub.WatchTrainings(
        pb.WatchTrainingsRequest(owner="ada", after_event_id=last, bookmarks=True)
    )
    await capped_store.write_status(mine.id, StatusUpdate(1, Phase.QUEUED, "JobCreated", ""))
    response = await asyncio.wait_for(resumed.read(), 10)
    resumed.cancel()
    assert isinstance(response, pb.WatchTrainingsResponse)
    assert (response.event.training_id, response.event.phase) == (mine.id, pb.PHASE_QUEUED)


async def test_a_watch_sends_no_bookmark_unless_asked(
    stub: Stub, capped_store: TrainingStore
) -> None:
    """Clients written before bookmarks see only events."""
    stream = stub.WatchTrainings(pb.WatchTrainingsRequest(owner="ada"))
    await stream.initial_metadata()
    await _others_busy(capped_store)
    responses = await _responses_until_quiet(stream, quiet_seconds=1)
    stream.cancel()
    assert responses == []


async def test_a_watch_showing_every_event_sends_no_bookmark(
    stub: Stub, capped_store: TrainingStore
) -> None:
    stream = stub.WatchTrainings(pb.WatchTrainingsRequest(bookmarks=True))
    await stream.initial_metadata()  # sent once the watch knows where it starts
    training, _ = await capped_store.create(lora_spec(), owner="bob")
    for step in range(3):
        await capped_store.write_status(
            training.id, StatusUpdate(1, Phase.RUNNING, "Running", str(step))
        )
    responses = await _responses_until_quiet(stream, quiet_seconds=1)
    stream.cancel()
    assert [r.HasField("event") for r in responses] == [True] * 4
