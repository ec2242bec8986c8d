"""The requests the integration tests send: CreateTraining whatever the
caller's credentials, request id or spec, and the legacy contract's Train
request."""

from __future__ import annotations

from typing import TypeAlias

import grpc
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec

Metadata = tuple[tuple[str, str], ...]
# The stub made on an aio channel (a name for type checking only).
Stub: TypeAlias = "pb_grpc.TrainingServiceAsyncStub"


async def create(
    to: grpc.aio.Channel | Stub,
    metadata: Metadata = (),
    *,
    spec: pb.TrainingSpec | None = None,
    request_id: str = "",
) -> pb.Training:
    """Creates a training of `spec` (the LoRA example unless given) through
    `to` (a channel, or the stub of one), as the caller `metadata` names."""
    stub = pb_grpc.TrainingServiceStub(to) if isinstance(to, grpc.aio.Channel) else to
    request = pb.CreateTrainingRequest(spec=spec or lora_spec(), request_id=request_id)
    return (await stub.CreateTraining(request, metadata=metadata, timeout=5)).training


def legacy_request() -> legacy.TrainingRequest:
    return legacy.TrainingRequest(
        model_name="granite-lora",
        output_path="/mnt/output/granite",
        parameters=legacy.TrainingParameters(
            model_name_or_path="ibm-granite/granite-3.0-2b-base",
            data_path="/mnt/data/train.jsonl",
            num_train_epochs=2,
            learning_rate=1e-4,
            torch_dytpe="bfloat16",
            peft_method="lora",
            lora_parameters=legacy.LORAParameters(r=4, lora_alpha=8, target_modules=["q_proj"]),
        ),
    )
