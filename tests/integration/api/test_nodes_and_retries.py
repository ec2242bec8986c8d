"""A training's nodes and retry budget through real gRPC calls, over a real
Redis: what an operator allows, what a spec asks, and what the legacy
contract gets."""

from __future__ import annotations

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from tests.support.api import StartApi
from tests.support.grpc_errors import violated_fields
from tests.support.trainings import create
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore

LIMITS = {"max_nodes_per_training": 8, "max_retries": 4, "default_max_retries": 2}


async def test_a_four_node_training_keeps_its_nodes_and_budget(
    start_api: StartApi, store: TrainingStore
) -> None:
    api = await start_api(**LIMITS)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        trainings = pb_grpc.TrainingServiceStub(channel)
        spec = lora_spec()
        spec.resources.nodes = 4
        spec.max_retries = 3
        created = await create(trainings, spec=spec)
        defaulted = await create(trainings, spec=lora_spec())
        got = (await trainings.GetTraining(pb.GetTrainingRequest(id=created.id))).training
    assert got.spec.resources.nodes == 4
    assert got.max_retries == 3
    assert defaulted.max_retries == 2  # the operator's default
    assert defaulted.spec.resources.nodes == 0  # one node, as before
    assert (await store.get(created.id)).max_retries == 3


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        pytest.param("nodes", 9, "spec.resources.nodes", id="more nodes than the operator allows"),
        pytest.param("max_retries", 5, "spec.max_retries", id="more retries than allowed"),
    ],
)
async def test_past_the_operators_limits_is_refused_naming_the_field(
    start_api: StartApi, field: str, value: int, named: str
) -> None:
    api = await start_api(**LIMITS)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        trainings = pb_grpc.TrainingServiceStub(channel)
        spec = lora_spec()
        setattr(spec.resources if field == "nodes" else spec, field, value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(trainings, spec=spec)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(err.value) == [named]
        listed = await trainings.ListTrainings(pb.ListTrainingsRequest())
        assert list(listed.trainings) == []  # nothing half-written


async def test_retries_spent_and_the_attempt_show_in_the_training_and_its_events(
    start_api: StartApi, store: TrainingStore
) -> None:
    api = await start_api(**LIMITS)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        trainings = pb_grpc.TrainingServiceStub(channel)
        training = await create(trainings)
        name = f"train-{training.id}-a2"
        restarting = "attempt 2: rank 3 exited with code 1 in attempt 1; the gang restarts"
        await store.write_status(
            training.id,
            StatusUpdate(1, Phase.QUEUED, "Restarting", restarting, name, 2, retries=1),
        )
        got = (await trainings.GetTraining(pb.GetTrainingRequest(id=training.id))).training
        await trainings.CancelTraining(pb.CancelTrainingRequest(id=training.id))
        events = trainings.WatchTraining(pb.WatchTrainingRequest(id=training.id))
        seen = [await events.read() for _ in range(3)]
        events.cancel()
    assert (got.attempts, got.retries, got.max_retries, got.job_name) == (2, 1, 2, name)
    said = [r.event for r in seen if isinstance(r, pb.WatchTrainingResponse)]
    # Submitted, restarting, and the cancel asked during attempt 2.
    assert [e.attempt for e in said] == [0, 2, 2]
    assert said[1].message == restarting
    assert said[2].cancel_requested
