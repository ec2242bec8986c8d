"""Hostile input through real calls of both APIs: INVALID_ARGUMENT with the
field named, never INTERNAL, and nothing stored."""

from __future__ import annotations

import math

import grpc
import pytest
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from tests.support.grpc_errors import violated_fields


def _spec(**changes: object) -> pb.TrainingSpec:
    spec = lora_spec()
    for path, value in changes.items():
        *parents, name = path.split("__")
        target: object = spec
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(
            _spec(parameters__learning_rate=math.nan), "spec.parameters.learning_rate", id="NaN"
        ),
        pytest.param(
            _spec(parameters__num_train_epochs=math.inf),
            "spec.parameters.num_train_epochs",
            id="infinity",
        ),
        pytest.param(
            _spec(output_path="/mnt/output/../../etc/cron.d"), "spec.output_path", id=".."
        ),
        pytest.param(
            _spec(parameters__data_path="s3://b/%2e%2e/x"),
            "spec.parameters.data_path",
            id="encoded dots",
        ),
        pytest.param(
            pb.TrainingSpec(
                model_name="m",
                output_path="/mnt/o",
                parameters=lora_spec().parameters,
                labels={"app.kubernetes.io/managed-by\n": "x"},
            ),
            "spec.labels['app.kubernetes.io/managed-by\\n']",
            id="a label key with a newline",
        ),
    ],
)
async def test_v1_refuses_and_stores_nothing(
    trainings: pb_grpc.TrainingServiceAsyncStub, spec: pb.TrainingSpec, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await trainings.CreateTraining(pb.CreateTrainingRequest(spec=spec))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == [field]
    assert list((await trainings.ListTrainings(pb.ListTrainingsRequest())).trainings) == []


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        pytest.param(
            {"learning_rate": math.nan}, "parameters.learning_rate", id="NaN learning rate"
        ),
        pytest.param(
            {"num_train_epochs": -math.inf}, "parameters.num_train_epochs", id="-inf epochs"
        ),
        pytest.param({"data_path": "/mnt/../etc/passwd"}, "parameters.data_path", id="'..' path"),
        pytest.param(
            {"lora_parameters": legacy.LORAParameters(lora_dropout=math.nan)},
            "parameters.lora_parameters.lora_dropout",
            id="NaN LoRA dropout",
        ),
    ],
)
async def test_legacy_refuses_and_stores_nothing(
    channel: grpc.aio.Channel,
    trainings: pb_grpc.TrainingServiceAsyncStub,
    parameters: dict[str, object],
    field: str,
) -> None:
    values: dict[str, object] = {
        "model_name_or_path": "ibm-granite/granite-3.0-2b-base",
        "data_path": "/mnt/data/train.jsonl",
        **parameters,
    }
    request = legacy.TrainingRequest(
        model_name="granite",
        output_path="/mnt/output/granite",
        parameters=legacy.TrainingParameters(**values),  # type: ignore[arg-type]
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await legacy_grpc.TrainConductorStub(channel).Train(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == [field]
    assert list((await trainings.ListTrainings(pb.ListTrainingsRequest())).trainings) == []


async def test_a_huge_message_is_refused_before_it_is_read(
    trainings: pb_grpc.TrainingServiceAsyncStub,
) -> None:
    spec = lora_spec()
    spec.parameters.fsdp_config = "x" * (2 * 1024 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await trainings.CreateTraining(pb.CreateTrainingRequest(spec=spec))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
