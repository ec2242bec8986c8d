"""A client built from the legacy contract works unchanged."""

from __future__ import annotations

import grpc
import pytest
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from tests.support.grpc_errors import violated_fields
from tests.support.trainings import legacy_request


async def test_submit_read_and_cancel_with_the_legacy_contract(
    channel: grpc.aio.Channel, trainings: pb_grpc.TrainingServiceAsyncStub
) -> None:
    client = legacy_grpc.TrainConductorStub(channel)
    job = await client.Train(legacy_request())
    assert job.model_name == "granite-lora"

    status = await client.GetTrainingStatus(legacy.TrainingInfoRequest(training_id=job.training_id))
    assert status.state == legacy.PENDING
    assert status.submission_timestamp.seconds > 0

    # The same training through v1, with the legacy fields carried over.
    v1 = (await trainings.GetTraining(pb.GetTrainingRequest(id=job.training_id))).training
    assert v1.spec.parameters.torch_dtype == "bfloat16"
    assert v1.spec.parameters.peft_method == pb.PEFT_METHOD_LORA
    assert list(v1.spec.parameters.lora.target_modules) == ["q_proj"]

    canceled = await client.CancelTraining(legacy.TrainingInfoRequest(training_id=job.training_id))
    assert canceled.training_id == job.training_id
    # No controller runs here: the training stays PENDING, and both the
    # answer and later reads say that the cancel was taken.
    assert canceled.state == legacy.PENDING
    assert canceled.reasons[0].startswith("CancelRequested:")
    status = await client.GetTrainingStatus(legacy.TrainingInfoRequest(training_id=job.training_id))
    assert list(status.reasons) == list(canceled.reasons)
    v1 = (await trainings.GetTraining(pb.GetTrainingRequest(id=job.training_id))).training
    assert v1.cancel_requested


async def test_legacy_bad_input_names_the_legacy_field(channel: grpc.aio.Channel) -> None:
    client = legacy_grpc.TrainConductorStub(channel)
    request = legacy_request()
    request.parameters.peft_method = "magic"
    request.parameters.torch_dytpe = "float8"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.Train(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["parameters.peft_method", "parameters.torch_dytpe"]


async def test_legacy_unknown_id_is_not_found(channel: grpc.aio.Channel) -> None:
    client = legacy_grpc.TrainConductorStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.GetTrainingStatus(legacy.TrainingInfoRequest(training_id="0" * 20))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
