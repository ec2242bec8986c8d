"""How much one caller may ask for: a rate of creates per identity, and a
cap on each owner's unfinished trainings."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from tests.support.api import StartApi
from tests.support.security import StaticTokens, plain_channel
from tests.support.trainings import create
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore


def details(error: grpc.aio.AioRpcError) -> list[object]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no rich status details in the error"
    found: list[object] = []
    for detail in status.details:
        for kind in (error_details_pb2.RetryInfo, error_details_pb2.QuotaFailure):
            message = kind()
            if detail.Unpack(message):
                found.append(message)
    return found


async def test_a_burst_past_the_rate_is_resource_exhausted_with_a_retry_hint_for_that_caller_only(
    start_api: StartApi, token_api_settings: dict[str, object], static_tokens: StaticTokens
) -> None:
    api = await start_api(**token_api_settings, create_rate_per_second=0.2, create_burst=5)
    alice, bob = static_tokens.alice, static_tokens.bob
    async with plain_channel(api.port) as channel:
        results = await asyncio.gather(
            *(create(channel, alice.metadata()) for _ in range(12)), return_exceptions=True
        )
        created = [r for r in results if isinstance(r, pb.Training)]
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(created) == 5
        assert len(refused) == 7
        assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        (retry,) = details(refused[0])
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert 0 < retry.retry_delay.ToMilliseconds() <= 5000

        # Bob is served normally while alice waits.
        assert all([(await create(channel, bob.metadata())).owner == "bob" for _ in range(5)])

        # The legacy Train counts against the same bucket.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await legacy_grpc.TrainConductorStub(channel).Train(
                legacy.TrainingRequest(model_name="m", output_path="/mnt/o"),
                metadata=alice.metadata(),
            )
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_flood_from_one_caller_is_held_to_the_rate_while_another_is_served_alongside(
    start_api: StartApi, token_api_settings: dict[str, object], static_tokens: StaticTokens
) -> None:
    rate, burst = 5.0, 5
    api = await start_api(**token_api_settings, create_rate_per_second=rate, create_burst=burst)
    alice, bob, admin = static_tokens.alice, static_tokens.bob, static_tokens.admin
    async with plain_channel(api.port) as channel:
        flooding = True
        alice_got: list[pb.Training | grpc.aio.AioRpcError] = []

        async def flood() -> None:
            while flooding:
                try:
                    alice_got.append(await create(channel, alice.metadata()))
                except grpc.aio.AioRpcError as err:
                    alice_got.append(err)

        started = time.monotonic()
        floods = [asyncio.create_task(flood()) for _ in range(8)]
        await asyncio.sleep(0.2)  # the flood is under way
        # Bob creates at a pace his own bucket allows, all through the flood.
        bob_waits: list[float] = []
        for _ in range(10):
            sent = time.monotonic()
            assert (await create(channel, bob.metadata())).owner == "bob"
            bob_waits.append(time.monotonic() - sent)
            await asyncio.sleep(0.2)
        flooding = False
        await asyncio.gather(*floods)
        elapsed = time.monotonic() - started

        created = [r for r in alice_got if isinstance(r, pb.Training)]
        refused = [r for r in alice_got if isinstance(r, grpc.aio.AioRpcError)]
        assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert len(refused) > 10 * len(created), "that was no flood"
        # Her burst, then the rate: no more, and not nothing either.
        assert burst < len(created) <= burst + rate * elapsed + 1
        assert max(bob_waits) < 1.0, f"bob waited {max(bob_waits):.2f}s for a create"

        listed = await pb_grpc.TrainingServiceStub(channel).ListTrainings(
            pb.ListTrainingsRequest(page_size=1000), metadata=admin.metadata()
        )
        owners = [t.owner for t in listed.trainings]
        assert owners.count("alice") == len(created)
        assert owners.count("bob") == 10


async def test_reads_are_not_rate_limited(
    start_api: StartApi, token_api_settings: dict[str, object], static_tokens: StaticTokens
) -> None:
    api = await start_api(**token_api_settings, create_rate_per_second=0.1, create_burst=1)
    async with plain_channel(api.port) as channel:
        training = await create(channel, static_tokens.alice.metadata())
        stub = pb_grpc.TrainingServiceStub(channel)
        for _ in range(20):
            await stub.GetTraining(
                pb.GetTrainingRequest(id=training.id), metadata=static_tokens.alice.metadata()
            )


async def test_the_active_cap_refuses_a_new_training_until_one_finishes(
    start_api: StartApi,
    token_api_settings: dict[str, object],
    static_tokens: StaticTokens,
    store: TrainingStore,
) -> None:
    api = await start_api(**token_api_settings, max_active_trainings_per_owner=3)
    alice, bob = static_tokens.alice, static_tokens.bob
    async with plain_channel(api.port) as channel:
        first = await create(channel, alice.metadata(), request_id="first")
        second = await create(channel, alice.metadata())
        third = await create(channel, alice.metadata())
        for training, phase in ((second, Phase.RUNNING), (third, Phase.SUSPENDED)):
            await store.write_status(training.id, StatusUpdate(1, phase, phase.title(), ""))

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(channel, alice.metadata())
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "3 active trainings" in (err.value.details() or "")
        (quota,) = details(err.value)
        assert isinstance(quota, error_details_pb2.QuotaFailure)

        # A retry of a create that already succeeded still gets its training.
        assert (await create(channel, alice.metadata(), request_id="first")).id == first.id
        # The cap is alice's; bob is not affected.
        await create(channel, bob.metadata())
        # Once one of alice's finishes, she may create another.
        await store.write_status(second.id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
        await create(channel, alice.metadata())


async def test_concurrent_creates_never_pass_the_cap_together(
    start_api: StartApi, token_api_settings: dict[str, object], static_tokens: StaticTokens
) -> None:
    api = await start_api(**token_api_settings, max_active_trainings_per_owner=4)
    async with plain_channel(api.port) as channel:
        results = await asyncio.gather(
            *(create(channel, static_tokens.alice.metadata()) for _ in range(30)),
            return_exceptions=True,
        )
    assert sum(isinstance(r, pb.Training) for r in results) == 4
    assert all(
        r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for r in results
        if isinstance(r, grpc.aio.AioRpcError)
    )


async def test_watches_past_the_replicas_bound_are_refused_and_other_calls_go_on(
    start_api: StartApi,
) -> None:
    # Each watch holds a Redis connection: unbounded, quiet watches would
    # empty the pool, and every call (health's too) would fail as if Redis
    # were down.
    api = await start_api(max_watches=3)
    async with plain_channel(api.port) as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        first = await stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))
        since_start = pb.WatchTrainingsRequest(after_event_id="0-1")
        watches = [stub.WatchTrainings(since_start) for _ in range(3)]
        for watch in watches:  # each has its slot once it has seen an event
            response = await watch.read()
            assert isinstance(response, pb.WatchTrainingsResponse)
            assert response.event.training_id == first.training.id

        refused = stub.WatchTrainings(pb.WatchTrainingsRequest())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await refused.read()
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 3 watches" in (err.value.details() or "")
        await stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))  # unary calls go on

        watches[0].cancel()
        await asyncio.sleep(0.5)  # the server sees the cancel at its next poll at the latest
        one = stub.WatchTraining(pb.WatchTrainingRequest(id=first.training.id))
        response = await one.read()
        assert isinstance(response, pb.WatchTrainingResponse)
        assert response.event.phase == pb.PHASE_PENDING
        one.cancel()
        for watch in watches[1:]:
            watch.cancel()


async def test_a_list_page_ends_where_its_response_would_outgrow_the_message_limit(
    start_api: StartApi,
) -> None:
    api = await start_api(max_message_bytes=64 * 1024)
    large = lora_spec()
    large.output_path = "/mnt/output/" + "o" * 4000
    large.parameters.data_path = "/mnt/data/" + "d" * 4000
    large.parameters.base_model = "b" * 4000  # about 12 KB a training
    async with plain_channel(api.port) as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        created = {
            (await stub.CreateTraining(pb.CreateTrainingRequest(spec=large))).training.id
            for _ in range(12)
        }
        seen: list[str] = []
        pages = 0
        token = ""
        while True:
            page = await stub.ListTrainings(pb.ListTrainingsRequest(page_size=12, page_token=token))
            assert page.ByteSize() <= 64 * 1024
            pages += 1
            seen += [t.id for t in page.trainings]
            token = page.next_page_token
            if not token:
                break
    assert pages > 1
    assert sorted(seen) == sorted(created)  # every one, once
