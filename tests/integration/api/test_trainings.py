"""The v1 API through real gRPC calls, over a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.grpc_errors import violated_fields
from tests.support.trainings import Stub, create
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import TrainingStore


async def test_a_created_training_reads_back_pending(trainings: Stub) -> None:
    created = await create(trainings, spec=lora_spec(team="nlp"))
    got = (await trainings.GetTraining(pb.GetTrainingRequest(id=created.id))).training
    assert got.phase == pb.PHASE_PENDING
    assert got.spec == lora_spec(team="nlp")
    assert got.generation == 1
    assert got.owner == "anonymous"
    assert got.create_time.ToMilliseconds() > 0


async def test_an_unknown_id_is_not_found(trainings: Stub) -> None:
    for training_id in ("0" * 20, "not-an-id"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await trainings.GetTraining(pb.GetTrainingRequest(id=training_id))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_retry_with_the_same_request_id_returns_the_first_training(
    trainings: Stub, store: TrainingStore
) -> None:
    first = await create(trainings, request_id="retry-1")
    again = await create(trainings, request_id="retry-1")
    assert again == first


async def test_a_request_id_reused_for_another_spec_is_refused_naming_it(
    trainings: Stub,
) -> None:
    first = await create(trainings, spec=lora_spec(team="nlp"), request_id="run-42")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(trainings, spec=lora_spec(team="vision"), request_id="run-42")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["request_id"]
    assert first.id in (err.value.details() or "")
    listed = await trainings.ListTrainings(pb.ListTrainingsRequest(page_size=10))
    assert [t.id for t in listed.trainings] == [first.id]


async def test_fifty_concurrent_identical_calls_make_one_training(
    trainings: Stub, api: object
) -> None:
    results = await asyncio.gather(*(create(trainings, request_id="burst") for _ in range(50)))
    assert len({t.id for t in results}) == 1
    listed = await trainings.ListTrainings(pb.ListTrainingsRequest(page_size=100))
    assert [t.id for t in listed.trainings] == [results[0].id]


async def test_bad_input_names_the_field_and_stores_nothing(trainings: Stub) -> None:
    spec = lora_spec()
    spec.parameters.learning_rate = -1
    spec.model_name = ""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(trainings, spec=spec)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["spec.model_name", "spec.parameters.learning_rate"]
    assert "spec.model_name" in (err.value.details() or "")
    listed = await trainings.ListTrainings(pb.ListTrainingsRequest())
    assert list(listed.trainings) == []


async def test_list_filters_by_phase_owner_and_labels_newest_first(
    trainings: Stub, store: TrainingStore, channel: grpc.aio.Channel
) -> None:
    a = await create(trainings, spec=lora_spec(team="nlp"))
    b = await create(trainings, spec=lora_spec(team="vision"))
    c = await create(trainings, spec=lora_spec(team="nlp"))
    other = await trainings.CreateTraining(
        pb.CreateTrainingRequest(spec=lora_spec(team="nlp")), metadata=(("x-tc-user", "ada"),)
    )
    await store.write_status(b.id, StatusUpdate(1, Phase.RUNNING, "Running", "running"))

    async def ids(**kw: object) -> list[str]:
        response = await trainings.ListTrainings(pb.ListTrainingsRequest(**kw))  # type: ignore[arg-type]
        return [t.id for t in response.trainings]

    assert await ids() == [other.training.id, c.id, b.id, a.id]
    assert await ids(labels={"team": "nlp"}, owner="anonymous") == [c.id, a.id]
    assert await ids(phase=pb.PHASE_RUNNING) == [b.id]
    assert await ids(phase=pb.PHASE_PENDING, owner="ada") == [other.training.id]


async def test_pages_cover_every_training_once_while_new_ones_arrive(trainings: Stub) -> None:
    before = {(await create(trainings)).id for _ in range(60)}
    seen: list[str] = []
    token = ""
    arrivals: list[str] = []
    while True:
        page = await trainings.ListTrainings(pb.ListTrainingsRequest(page_size=7, page_token=token))
        seen += [t.id for t in page.trainings]
        arrivals += [(await create(trainings)).id for _ in range(3)]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)), "a training appeared on two pages"
    assert before <= set(seen), "a training that existed before listing was missed"
    assert seen == sorted(seen, reverse=True), "not newest first"


async def test_a_page_token_from_other_filters_is_refused(trainings: Stub) -> None:
    for _ in range(3):
        await create(trainings)
    page = await trainings.ListTrainings(pb.ListTrainingsRequest(page_size=1))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await trainings.ListTrainings(
            pb.ListTrainingsRequest(page_size=1, page_token=page.next_page_token, owner="ada")
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_is_recorded_once_and_a_finished_training_stays_finished(
    trainings: Stub, store: TrainingStore
) -> None:
    running = await create(trainings)
    canceled = (await trainings.CancelTraining(pb.CancelTrainingRequest(id=running.id))).training
    again = (await trainings.CancelTraining(pb.CancelTrainingRequest(id=running.id))).training
    assert canceled.cancel_requested
    assert canceled.generation == 2
    assert again.generation == 2

    done = await create(trainings)
    await store.write_status(done.id, StatusUpdate(1, Phase.COMPLETED, "Completed", "done"))
    after = (await trainings.CancelTraining(pb.CancelTrainingRequest(id=done.id))).training
    assert after.phase == pb.PHASE_COMPLETED
    assert not after.cancel_requested
    assert after.generation == 1


async def test_watch_shows_every_phase_in_order_and_ends_at_the_final_one(
    trainings: Stub, store: TrainingStore
) -> None:
    training = await create(trainings)
    stream = trainings.WatchTraining(pb.WatchTrainingRequest(id=training.id))

    async def progress() -> None:
        for phase in (Phase.QUEUED, Phase.RUNNING, Phase.COMPLETED):
            await asyncio.sleep(0.05)
            await store.write_status(training.id, StatusUpdate(1, phase, phase.title(), ""))

    task = asyncio.create_task(progress())
    phases = [r.event.phase async for r in stream]
    await task
    assert phases == [pb.PHASE_PENDING, pb.PHASE_QUEUED, pb.PHASE_RUNNING, pb.PHASE_COMPLETED]


async def test_a_final_status_written_as_the_watch_checks_for_one_is_still_sent(
    trainings: Stub, store: TrainingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch reads events (none came), then reads the training to see
    whether it is over. A final status written between the two must still
    reach the client before the stream ends."""
    training = await create(trainings)
    reads = 0
    get = TrainingStore.get

    async def final_written_just_before(self: TrainingStore, training_id: str) -> Any:
        nonlocal reads
        reads += 1
        if reads == 2:  # the first is the watch's visibility check
            await store.write_status(training_id, StatusUpdate(1, Phase.FAILED, "Failed", "x"))
        return await get(self, training_id)

    monkeypatch.setattr(TrainingStore, "get", final_written_just_before)
    stream = trainings.WatchTraining(pb.WatchTrainingRequest(id=training.id))
    phases = [r.event.phase async for r in stream]
    assert phases == [pb.PHASE_PENDING, pb.PHASE_FAILED]


async def test_a_resumed_watch_misses_no_event_and_repeats_none(
    trainings: Stub, store: TrainingStore
) -> None:
    training = await create(trainings)
    await store.write_status(training.id, StatusUpdate(1, Phase.QUEUED, "Queued", ""))
    first = trainings.WatchTraining(pb.WatchTrainingRequest(id=training.id))
    seen = []
    async for response in first:
        seen.append(response.event)
        if len(seen) == 2:
            break
    first.cancel()
    # Events that happen while the client is away.
    await store.write_status(training.id, StatusUpdate(1, Phase.RUNNING, "Running", ""))
    await store.write_status(training.id, StatusUpdate(1, Phase.FAILED, "Failed", "exit 1"))
    resumed = trainings.WatchTraining(
        pb.WatchTrainingRequest(id=training.id, after_event_id=seen[-1].event_id)
    )
    seen += [r.event async for r in resumed]
    assert [e.phase for e in seen] == [
        pb.PHASE_PENDING,
        pb.PHASE_QUEUED,
        pb.PHASE_RUNNING,
        pb.PHASE_FAILED,
    ]
    assert len({e.event_id for e in seen}) == 4


async def test_watch_trainings_streams_changes_of_all_trainings(
    trainings: Stub, store: TrainingStore
) -> None:
    stream = trainings.WatchTrainings(pb.WatchTrainingsRequest())
    await asyncio.sleep(0.3)  # the stream starts "from now"
    a = await create(trainings)
    b = await create(trainings)
    await store.write_status(a.id, StatusUpdate(1, Phase.RUNNING, "Running", ""))
    events = []
    async for response in stream:
        events.append((response.event.training_id, response.event.phase))
        if len(events) == 3:
            break
    stream.cancel()
    assert events == [
        (a.id, pb.PHASE_PENDING),
        (b.id, pb.PHASE_PENDING),
        (a.id, pb.PHASE_RUNNING),
    ]


async def test_a_bad_event_id_is_an_invalid_argument(trainings: Stub) -> None:
    training = await create(trainings)
    stream = trainings.WatchTraining(
        pb.WatchTrainingRequest(id=training.id, after_event_id="yesterday")
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stream:
            pass
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["after_event_id"]


async def test_a_watch_resumed_after_trimmed_events_is_told_so(
    trainings: Stub, redis_server: RedisServer, key_prefix: str
) -> None:
    """The event streams are capped; resuming from an event older than what
    is kept would silently skip events, so it is OUT_OF_RANGE instead."""
    training = await create(trainings)
    capped = TrainingStore(
        connect(CommonSettings(redis_url=redis_server.url)),
        prefix=key_prefix,
        training_events_cap=10,
        all_events_cap=10,
    )
    # Each stream has its own event ids: the first of each.
    first = {"one": (await capped.training_events(training.id))[0].event_id}
    first["all"] = await capped.last_event_id()
    # Trimming is approximate (whole stream nodes of 100 entries): enough
    # events that the node holding the first one goes.
    for step in range(250):
        await capped.write_status(
            training.id, StatusUpdate(1, Phase.RUNNING, "Running", f"step {step}")
        )
    latest = {"one": (await capped.training_events(training.id, after=first["one"]))[-1].event_id}
    latest["all"] = await capped.last_event_id()

    async def watch_one(after: str) -> list[pb.TrainingEvent]:
        stream = trainings.WatchTraining(
            pb.WatchTrainingRequest(id=training.id, after_event_id=after)
        )
        return [response.event async for response in stream]

    async def watch_all(after: str) -> list[pb.TrainingEvent]:
        stream = trainings.WatchTrainings(pb.WatchTrainingsRequest(after_event_id=after))
        async for response in stream:
            stream.cancel()
            return [response.event]
        return []

    watches = {"one": watch_one, "all": watch_all}
    for name, watch in watches.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(watch(first[name]), 10)
        assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE, name
        assert f"events after {first[name]} are no longer kept" in str(err.value.details())

    # From what is still kept, watches serve as before.
    await capped.write_status(training.id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
    await capped.close()
    for name, watch in watches.items():
        events = await asyncio.wait_for(watch(latest[name]), 10)
        assert [e.phase for e in events] == [pb.PHASE_COMPLETED], name


async def test_a_watch_behind_when_its_training_finishes_is_told_of_the_events_trimmed(
    trainings: Stub, redis_server: RedisServer, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finishing keeps only a training's last events; a watch that was
    further behind must not skip the trimmed ones in silence."""
    training = await create(trainings)
    finishing = TrainingStore(
        connect(CommonSettings(redis_url=redis_server.url)),
        prefix=key_prefix,
        finished_events_kept=3,
    )
    # The watch's reads after its first wait until the events below are in.
    written = asyncio.Event()
    read = TrainingStore.training_events

    async def behind(self: TrainingStore, training_id: str, **options: Any) -> Any:
        if options.get("after", "0") != "0":
            await written.wait()
        return await read(self, training_id, **options)

    monkeypatch.setattr(TrainingStore, "training_events", behind)
    stream = trainings.WatchTraining(pb.WatchTrainingRequest(id=training.id))
    first = await stream.read()
    assert isinstance(first, pb.WatchTrainingResponse)
    assert first.event.phase == pb.PHASE_PENDING
    for step in range(5):
        await finishing.write_status(
            training.id, StatusUpdate(1, Phase.RUNNING, "Running", f"step {step}")
        )
    await finishing.write_status(training.id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
    await finishing.close()
    written.set()

    async def rest() -> list[object]:
        responses = []
        while (response := await stream.read()) is not grpc.aio.EOF:
            responses.append(response)
        return responses

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(rest(), 10)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert f"events after {first.event.event_id} are no longer kept" in str(err.value.details())
