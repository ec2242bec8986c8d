"""Two owners and an admin: nobody sees, lists, watches or cancels another
owner's trainings, in either API; an admin sees them all."""

from __future__ import annotations

import asyncio
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
from tests.support.security import StaticTokens, StaticUser, plain_channel
from tests.support.trainings import create
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore


@dataclass
class Caller:
    """One user's view of the API, every call with their token."""

    user: StaticUser
    channel: grpc.aio.Channel

    @property
    def v1(self) -> pb_grpc.TrainingServiceAsyncStub:
        return pb_grpc.TrainingServiceStub(self.channel)

    @property
    def legacy(self) -> legacy_grpc.TrainConductorAsyncStub:
        return legacy_grpc.TrainConductorStub(self.channel)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return self.user.metadata()

    async def create(self, **labels: str) -> pb.Training:
        return await create(self.channel, self.md, spec=lora_spec(**labels))

    async def listed(self, **kw: object) -> list[str]:
        request = pb.ListTrainingsRequest(**kw)  # type: ignore[arg-type]
        return [t.id for t in (await self.v1.ListTrainings(request, metadata=self.md)).trainings]


@dataclass
class Callers:
    alice: Caller
    bob: Caller
    admin: Caller


@pytest.fixture
async def callers(
    start_api: StartApi, token_api_settings: dict[str, object], static_tokens: StaticTokens
) -> AsyncIterator[Callers]:
    api = await start_api(**token_api_settings)
    async with plain_channel(api.port) as channel:
        yield Callers(
            Caller(static_tokens.alice, channel),
            Caller(static_tokens.bob, channel),
            Caller(static_tokens.admin, channel),
        )


async def not_found(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    return err.value.details() or ""


async def test_another_owners_training_is_not_found_exactly_like_a_missing_one(
    callers: Callers,
) -> None:
    alices = await callers.alice.create()
    bob = callers.bob
    message = await not_found(
        bob.v1.GetTraining(pb.GetTrainingRequest(id=alices.id), metadata=bob.md)
    )
    missing = "0" * 20
    assert message == f"training {alices.id!r} not found"
    assert (
        await not_found(bob.v1.GetTraining(pb.GetTrainingRequest(id=missing), metadata=bob.md))
        == f"training {missing!r} not found"
    )
    await not_found(bob.v1.CancelTraining(pb.CancelTrainingRequest(id=alices.id), metadata=bob.md))

    async def watch() -> None:
        stream = bob.v1.WatchTraining(pb.WatchTrainingRequest(id=alices.id), metadata=bob.md)
        async for _ in stream:
            pass

    await not_found(watch())
    # Bob's cancel changed nothing.
    alice = callers.alice
    got = await alice.v1.GetTraining(pb.GetTrainingRequest(id=alices.id), metadata=alice.md)
    assert not got.training.cancel_requested
    assert got.training.owner == "alice"


async def test_lists_show_only_the_callers_own_and_an_admin_sees_all(callers: Callers) -> None:
    a1 = (await callers.alice.create(team="nlp")).id
    b1 = (await callers.bob.create(team="nlp")).id
    a2 = (await callers.alice.create()).id

    assert await callers.alice.listed() == [a2, a1]
    assert await callers.bob.listed() == [b1]
    assert await callers.bob.listed(labels={"team": "nlp"}) == [b1]
    assert await callers.bob.listed(owner="alice") == []  # asking by name does not help
    assert await callers.alice.listed(owner="alice") == [a2, a1]
    assert await callers.admin.listed() == [a2, b1, a1]
    assert await callers.admin.listed(owner="bob") == [b1]


async def test_pages_of_a_restricted_list_stay_restricted(callers: Callers) -> None:
    mine = [(await callers.alice.create()).id for _ in range(3)]
    await callers.bob.create()
    seen: list[str] = []
    token = ""
    while True:
        request = pb.ListTrainingsRequest(page_size=1, page_token=token)
        page = await callers.alice.v1.ListTrainings(request, metadata=callers.alice.md)
        seen += [t.id for t in page.trainings]
        token = page.next_page_token
        if not token:
            break
    assert seen == mine[::-1]


async def test_watching_all_trainings_shows_only_the_callers_own(
    callers: Callers, store: TrainingStore
) -> None:
    bob, admin = callers.bob, callers.admin
    bobs_stream = bob.v1.WatchTrainings(pb.WatchTrainingsRequest(), metadata=bob.md)
    admins_stream = admin.v1.WatchTrainings(pb.WatchTrainingsRequest(), metadata=admin.md)
    # Not even a bookmark says when alice's trainings change.
    snooping = bob.v1.WatchTrainings(
        pb.WatchTrainingsRequest(owner="alice", bookmarks=True), metadata=bob.md
    )
    await asyncio.sleep(0.3)  # the streams start "from now"
    alices = await callers.alice.create()
    bobs = await bob.create()
    await store.write_status(alices.id, StatusUpdate(1, Phase.RUNNING, "Running", ""))
    await store.write_status(bobs.id, StatusUpdate(1, Phase.RUNNING, "Running", ""))

    async def first(stream: object, count: int) -> list[tuple[str, int]]:
        events = []
        async for response in stream:  # type: ignore[attr-defined]
            events.append((response.event.training_id, response.event.phase))
            if len(events) == count:
                break
        stream.cancel()  # type: ignore[attr-defined]
        return events

    assert await first(bobs_stream, 2) == [(bobs.id, pb.PHASE_PENDING), (bobs.id, pb.PHASE_RUNNING)]
    assert {i for i, _ in await first(admins_stream, 4)} == {alices.id, bobs.id}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(first(snooping, 1), timeout=1.0)


async def test_the_legacy_api_follows_the_same_rules(callers: Callers) -> None:
    alice, bob, admin = callers.alice, callers.bob, callers.admin
    job = await alice.legacy.Train(
        legacy.TrainingRequest(
            model_name="granite",
            output_path="/mnt/output/granite",
            parameters=legacy.TrainingParameters(
                model_name_or_path="ibm-granite/granite-3.0-2b-base",
                data_path="/mnt/data/train.jsonl",
            ),
        ),
        metadata=alice.md,
    )
    info = legacy.TrainingInfoRequest(training_id=job.training_id)
    await not_found(bob.legacy.GetTrainingStatus(info, metadata=bob.md))
    await not_found(bob.legacy.CancelTraining(info, metadata=bob.md))
    assert (await alice.legacy.GetTrainingStatus(info, metadata=alice.md)).state == legacy.PENDING
    assert (await admin.legacy.GetTrainingStatus(info, metadata=admin.md)).state == legacy.PENDING
    # The legacy training is alice's in v1 too.
    assert await alice.listed() == [job.training_id]
    assert await bob.listed() == []
    canceled = await admin.legacy.CancelTraining(info, metadata=admin.md)
    assert canceled.training_id == job.training_id


async def test_an_admin_may_cancel_anyones_training(callers: Callers) -> None:
    alices = await callers.alice.create()
    admin = callers.admin
    canceled = await admin.v1.CancelTraining(
        pb.CancelTrainingRequest(id=alices.id), metadata=admin.md
    )
    assert canceled.training.cancel_requested
    assert canceled.training.owner == "alice"


async def test_the_same_request_id_from_two_owners_makes_two_trainings(callers: Callers) -> None:
    alice, bob = callers.alice, callers.bob
    request = pb.CreateTrainingRequest(spec=lora_spec(), request_id="nightly:1")
    a = (await alice.v1.CreateTraining(request, metadata=alice.md)).training
    b = (await bob.v1.CreateTraining(request, metadata=bob.md)).training
    assert a.id != b.id
    assert (a.owner, b.owner) == ("alice", "bob")
