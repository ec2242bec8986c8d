"""Queues through the API, over a real Redis: a training names its queue and
priority or takes the operator's defaults (per group, then for all, in the
legacy contract too); an installation without queues refuses them, naming
the field; an owner holds and releases a queued training, and no one else
can."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from tests.support.api import StartApi
from tests.support.grpc_errors import violated_fields
from tests.support.security import StaticTokens, StaticUser, plain_channel
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore


def queued_spec(queue: str = "", priority: str = "") -> pb.TrainingSpec:
    spec = lora_spec()
    spec.queue, spec.priority = queue, priority
    return spec


@dataclass
class Caller:
    user: StaticUser
    channel: grpc.aio.Channel

    @property
    def v1(self) -> pb_grpc.TrainingServiceAsyncStub:
        return pb_grpc.TrainingServiceStub(self.channel)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return self.user.metadata()

    async def create(self, spec: pb.TrainingSpec) -> pb.Training:
        request = pb.CreateTrainingRequest(spec=spec)
        return (await self.v1.CreateTraining(request, metadata=self.md)).training


@dataclass
class Callers:
    alice: Caller  # group ml
    bob: Caller  # group vision
    channel: grpc.aio.Channel


@pytest.fixture
async def callers(
    start_api: StartApi, token_api_settings: dict[str, object], static_tokens: StaticTokens
) -> AsyncIterator[Callers]:
    api = await start_api(
        **token_api_settings,
        queues_enabled=True,
        default_queue="shared",
        default_priority="low",
        group_default_queues={"ml": "team-a"},
    )
    async with plain_channel(api.port) as channel:
        yield Callers(
            Caller(static_tokens.alice, channel), Caller(static_tokens.bob, channel), channel
        )


async def test_a_training_names_its_queue_and_priority(callers: Callers) -> None:
    created = await callers.alice.create(queued_spec("team-b", "high"))
    assert (created.queue, created.priority) == ("team-b", "high")
    assert created.queue_position == 0  # not known until the controller says
    assert created.spec.queue == "team-b"


async def test_defaults_come_from_the_owners_group_then_the_operator(callers: Callers) -> None:
    alices = await callers.alice.create(queued_spec())
    bobs = await callers.bob.create(queued_spec())
    assert (alices.queue, alices.priority) == ("team-a", "low")
    assert (bobs.queue, bobs.priority) == ("shared", "low")
    # The spec stays as sent: a retry with the same request id matches it.
    assert alices.spec.queue == ""


async def test_the_legacy_contract_takes_the_defaults(callers: Callers) -> None:
    stub = legacy_grpc.TrainConductorStub(callers.channel)
    request = legacy.TrainingRequest(
        model_name="legacy-model",
        output_path="/mnt/output/legacy",
        parameters=legacy.TrainingParameters(
            model_name_or_path="meta-llama/Llama-3.2-1B", data_path="/mnt/data/a.jsonl"
        ),
    )
    job = await stub.Train(request, metadata=callers.alice.md)
    got = await callers.alice.v1.GetTraining(
        pb.GetTrainingRequest(id=job.training_id), metadata=callers.alice.md
    )
    assert (got.training.queue, got.training.priority) == ("team-a", "low")


async def test_bad_names_are_refused_naming_each_field(callers: Callers) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await callers.alice.create(queued_spec("Team A", "-x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["spec.queue", "spec.priority"]


async def test_without_queues_a_queue_is_refused_naming_the_field(start_api: StartApi) -> None:
    api = await start_api()
    async with plain_channel(api.port) as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateTraining(pb.CreateTrainingRequest(spec=queued_spec("team-a")))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(err.value) == ["spec.queue"]
        assert "runs without queues" in (err.value.details() or "")
        # Everything else as before: no queue, no position.
        plain = (await stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))).training
        assert (plain.queue, plain.priority, plain.queue_position) == ("", "", 0)


async def test_hold_and_release_raise_the_generation_and_are_idempotent(
    callers: Callers,
) -> None:
    alice = callers.alice
    created = await alice.create(queued_spec("team-a"))
    held = await alice.v1.HoldTraining(pb.HoldTrainingRequest(id=created.id), metadata=alice.md)
    assert held.training.held
    assert held.training.generation == created.generation + 1
    again = await alice.v1.HoldTraining(pb.HoldTrainingRequest(id=created.id), metadata=alice.md)
    assert again.training.generation == held.training.generation
    released = await alice.v1.ReleaseTraining(
        pb.ReleaseTrainingRequest(id=created.id), metadata=alice.md
    )
    assert not released.training.held
    assert released.training.generation == created.generation + 2


async def test_only_the_owner_holds_a_training(callers: Callers) -> None:
    alices = await callers.alice.create(queued_spec("team-a"))
    bob = callers.bob
    for call in (
        bob.v1.HoldTraining(pb.HoldTrainingRequest(id=alices.id), metadata=bob.md),
        bob.v1.ReleaseTraining(pb.ReleaseTrainingRequest(id=alices.id), metadata=bob.md),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_training_without_a_queue_can_not_be_held(start_api: StartApi) -> None:
    api = await start_api(queues_enabled=True)  # no default queue
    async with plain_channel(api.port) as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        created = (await stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))).training
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.HoldTraining(pb.HoldTrainingRequest(id=created.id))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "waits in no queue" in (err.value.details() or "")


async def test_a_finished_training_is_not_held(callers: Callers, store: TrainingStore) -> None:
    alice = callers.alice
    created = await alice.create(queued_spec("team-a"))
    await store.write_status(
        created.id,
        StatusUpdate(observed_generation=1, phase=Phase.COMPLETED, reason="Completed", message=""),
    )
    held = await alice.v1.HoldTraining(pb.HoldTrainingRequest(id=created.id), metadata=alice.md)
    assert not held.training.held
    assert held.training.phase == pb.PHASE_COMPLETED


async def test_a_list_filters_by_queue(callers: Callers) -> None:
    alice = callers.alice
    in_a = await alice.create(queued_spec("team-a"))
    in_b = await alice.create(queued_spec("team-b"))
    listed = await alice.v1.ListTrainings(
        pb.ListTrainingsRequest(queue="team-b"), metadata=alice.md
    )
    ids = [t.id for t in listed.trainings]
    assert in_b.id in ids
    assert in_a.id not in ids


async def test_a_watch_shows_a_change_of_place_in_the_queue(
    callers: Callers, store: TrainingStore
) -> None:
    alice = callers.alice
    created = await alice.create(queued_spec("team-a"))
    for position in (3, 2):
        await store.write_status(
            created.id,
            StatusUpdate(
                observed_generation=1,
                phase=Phase.QUEUED,
                reason="WaitingForQuota",
                message="insufficient unused quota for nvidia.com/gpu in flavor gpu",
                queue_position=position,
            ),
        )
    stream = alice.v1.WatchTraining(pb.WatchTrainingRequest(id=created.id), metadata=alice.md)
    seen = []
    async for response in stream:
        seen.append(response.event.queue_position)
        if len(seen) == 3:
            break
    stream.cancel()
    assert seen == [0, 3, 2]
    got = await alice.v1.GetTraining(pb.GetTrainingRequest(id=created.id), metadata=alice.md)
    assert got.training.queue_position == 2
