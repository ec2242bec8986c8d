"""Every field of the legacy `TrainingRequest`, plausible and hostile,
through real calls to the legacy API over the real Redis: never INTERNAL or
UNKNOWN; a refusal names the legacy fields and stores nothing; an accepted
request reads back through v1 with the same values."""

from __future__ import annotations

import math

import grpc
from hypothesis import example, given
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from tests.property.conftest import KeySpace, Tally, examples
from tests.property.refusals import refused_fields
from tests.property.requests import LORA, PROMPT_TUNING, SHARED_PARAMETERS, legacy_training_requests
from tests.property.safety import unsafe_values

EXAMPLES = 2000

LEGACY_FIELDS = ("model_name", "output_path", "parameters.")
PEFT_BY_NAME = {
    "none": pb.PEFT_METHOD_NONE,
    "lora": pb.PEFT_METHOD_LORA,
    "pt": pb.PEFT_METHOD_PROMPT_TUNING,
    "prompt_tuning": pb.PEFT_METHOD_PROMPT_TUNING,
}
# A request that names no method gets the one of the block it sends.
PEFT_BY_BLOCK = {
    "lora_parameters": pb.PEFT_METHOD_LORA,
    "pt_parameters": pb.PEFT_METHOD_PROMPT_TUNING,
    None: pb.PEFT_METHOD_NONE,
}


def v1_view(request: legacy.TrainingRequest) -> pb.TrainingSpec:
    """The v1 spec a legacy request stands for, field by field."""
    p = request.parameters
    view = pb.TrainingSpec(model_name=request.model_name, output_path=request.output_path)
    v = view.parameters
    v.SetInParent()
    v.base_model = p.model_name_or_path
    v.data_path = p.data_path
    for name in SHARED_PARAMETERS:
        if p.HasField(name):  # type: ignore[arg-type]
            setattr(v, name, getattr(p, name))
    if p.HasField("torch_dytpe"):
        v.torch_dtype = p.torch_dytpe
    block = p.WhichOneof("peft_method_parameters")
    v.peft_method = PEFT_BY_NAME.get(p.peft_method.lower()) or PEFT_BY_BLOCK[block]
    if block == "lora_parameters":  # its float `bias` has no v1 field: dropped
        v.lora.SetInParent()
        for name in LORA:
            if p.lora_parameters.HasField(name):  # type: ignore[arg-type]
                setattr(v.lora, name, getattr(p.lora_parameters, name))
        v.lora.target_modules.extend(p.lora_parameters.target_modules)
    elif block == "pt_parameters":
        v.prompt_tuning.SetInParent()
        for name in PROMPT_TUNING:
            if p.pt_parameters.HasField(name):  # type: ignore[arg-type]
                setattr(v.prompt_tuning, name, getattr(p.pt_parameters, name))
    return view


def every_field_wrong_at_length() -> legacy.TrainingRequest:
    """The most violations, with the longest field names, that a small
    legacy request can carry: the list of them must still reach the client."""
    parameters = legacy.TrainingParameters(
        model_name_or_path="x" * 4097,
        data_path="/mnt/../" + "\x00" * 4000,
        num_train_epochs=math.inf,
        learning_rate=math.nan,
        weight_decay=-math.inf,
        warmup_ratio=math.nan,
        logging_steps=-1,
        lr_scheduler_type="é" * 4097,
        torch_dytpe="é" * 4097,
        peft_method="lora",
        lora_parameters=legacy.LORAParameters(
            r=-1, lora_alpha=-1, lora_dropout=math.nan, target_modules=["é" * 129] * 64
        ),
    )
    return legacy.TrainingRequest(model_name="/" * 254, output_path="..", parameters=parameters)


@examples(EXAMPLES)
@example(train=every_field_wrong_at_length())
@given(train=legacy_training_requests())
async def test_a_legacy_train_is_refused_cleanly_or_reads_back_the_same_through_v1(
    channel: grpc.aio.Channel,
    trainings: pb_grpc.TrainingServiceAsyncStub,
    key_space: KeySpace,
    tally: Tally,
    train: legacy.TrainingRequest,
) -> None:
    with tally.example():
        try:
            tally.count(await trained_and_read_back(channel, trainings, key_space, train))
        finally:
            await key_space.clear()  # a failing example leaves nothing to the next


async def trained_and_read_back(
    channel: grpc.aio.Channel,
    trainings: pb_grpc.TrainingServiceAsyncStub,
    key_space: KeySpace,
    train: legacy.TrainingRequest,
) -> bool:
    """Whether `train` was accepted; either way, checks the answer."""
    conductor = legacy_grpc.TrainConductorStub(channel)
    try:
        job = await conductor.Train(train, timeout=30)
    except grpc.aio.AioRpcError as err:
        fields = refused_fields(err, train)
        # Named the way the legacy client named them.
        assert all(f.startswith(LEGACY_FIELDS) for f in fields), fields
        assert await key_space.keys() == [], "a refused request stored something"
        return False

    expected = v1_view(legacy.TrainingRequest.FromString(train.SerializeToString()))
    assert unsafe_values(expected) == []
    assert job.model_name == train.model_name
    got = await trainings.GetTraining(pb.GetTrainingRequest(id=job.training_id), timeout=30)
    assert got.training.spec == expected
    status = await conductor.GetTrainingStatus(
        legacy.TrainingInfoRequest(training_id=job.training_id), timeout=30
    )
    assert status.state == legacy.PENDING
    return True
