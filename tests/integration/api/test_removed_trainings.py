"""What a client reads of a training removed after the retention period:
NOT_FOUND that says so (to whoever could see it), and a retried create of
it that is told so instead of making a second training."""

from __future__ import annotations

import time

import grpc
import pytest
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack import lifecycle
from devstack.specs import lora_spec
from tests.support.api import StartApi
from tests.support.security import StaticTokens, plain_channel
from trainconductor_controller.retention import Retention
from trainconductor_core.phases import Phase
from trainconductor_core.store import TrainingStore

DAY = 24 * 3600
REMOVED = "it finished and was removed after the retention period"


async def remove_finished_long_ago(store: TrainingStore, training_id: str) -> None:
    """Finishes the training, and removes it as a retention pass a day after
    the end of a day's retention period does."""
    await lifecycle.start(store, training_id, start_ms=int(time.time() * 1000))
    await lifecycle.finish(store, training_id, Phase.COMPLETED, finish_ms=None)
    result = await Retention(
        store,
        retention_seconds=DAY,
        tombstone_seconds=DAY,
        interval_seconds=60,
        batch=10,
        rate_per_second=1e9,
        clock=lambda: time.time() + 2 * DAY,
    ).run_pass()
    assert result.removed == 1


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


async def test_a_removed_training_reads_as_not_found_removed_after_the_retention_period(
    start_api: StartApi,
    store: TrainingStore,
    token_api_settings: dict[str, object],
    static_tokens: StaticTokens,
) -> None:
    api = await start_api(**token_api_settings)
    alice, bob = static_tokens.alice.metadata(), static_tokens.bob.metadata()
    async with plain_channel(api.port) as channel:
        v1 = pb_grpc.TrainingServiceStub(channel)
        request = pb.CreateTrainingRequest(spec=lora_spec(), request_id="nightly-1")
        training = (await v1.CreateTraining(request, metadata=alice)).training
        await remove_finished_long_ago(store, training.id)

        get = await rpc_error(v1.GetTraining(pb.GetTrainingRequest(id=training.id), metadata=alice))
        assert get.code() == grpc.StatusCode.NOT_FOUND
        assert get.details() == f"training {training.id!r} not found: {REMOVED}"

        async def watch() -> None:
            async for _ in v1.WatchTraining(
                pb.WatchTrainingRequest(id=training.id, after_event_id="1-0"), metadata=alice
            ):
                pass

        watched = await rpc_error(watch())
        assert watched.code() == grpc.StatusCode.NOT_FOUND
        assert REMOVED in (watched.details() or "")

        legacy_stub = legacy_grpc.TrainConductorStub(channel)
        status = await rpc_error(
            legacy_stub.GetTrainingStatus(
                legacy.TrainingInfoRequest(training_id=training.id), metadata=alice
            )
        )
        assert status.code() == grpc.StatusCode.NOT_FOUND
        assert REMOVED in (status.details() or "")

        # Whoever could not see it learns nothing of it: a missing training.
        other = await rpc_error(v1.GetTraining(pb.GetTrainingRequest(id=training.id), metadata=bob))
        assert other.code() == grpc.StatusCode.NOT_FOUND
        assert other.details() == f"training {training.id!r} not found"


async def test_a_retry_of_a_removed_trainings_create_is_told_and_makes_none(
    start_api: StartApi, store: TrainingStore
) -> None:
    api = await start_api()
    async with plain_channel(api.port) as channel:
        v1 = pb_grpc.TrainingServiceStub(channel)
        request = pb.CreateTrainingRequest(spec=lora_spec(), request_id="nightly-2")
        training = (await v1.CreateTraining(request)).training
        await remove_finished_long_ago(store, training.id)

        retried = await rpc_error(v1.CreateTraining(request))
        assert retried.code() == grpc.StatusCode.ALREADY_EXISTS
        assert retried.details() == (
            f"request id 'nightly-2' created training {training.id!r}, which finished and was "
            "removed after the retention period; a new training needs a new request id"
        )
        listed = await v1.ListTrainings(pb.ListTrainingsRequest())
        assert list(listed.trainings) == []

        # A new request id makes a new training.
        again = pb.CreateTrainingRequest(spec=lora_spec(), request_id="nightly-3")
        assert (await v1.CreateTraining(again)).training.id != training.id
