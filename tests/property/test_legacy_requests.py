"""Every field of the legacy `TrainingRequest`, plausible and hostile,
through real calls to the legacy API over the real Redis: never INTERNAL or
UNKNOWN; a refusal names the legacy fields and stores nothing; an accepted
request reads back through v1 with the same values. Requests take the older
revision's form (nested LoRA and prompt-tuning blocks), the latest one's
(flat arguments and the fields it added) or, hostile, both."""

from __future__ import annotations

import math

import grpc
from google.protobuf.message import Message
from hypothesis import example, given
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from tests.property.examples import KeySpace, Tally, examples
from tests.property.refusals import refused_fields
from tests.property.requests import (
    ADDED_PARAMETERS,
    LORA,
    PROMPT_TUNING,
    SHARED_PARAMETERS,
    legacy_training_requests,
)
from tests.property.safety import unsafe_values

EXAMPLES = 2000

LEGACY_FIELDS = ("model_name", "output_path", "parameters.")
PEFT_BY_NAME = {
    "none": pb.PEFT_METHOD_NONE,
    "lora": pb.PEFT_METHOD_LORA,
    "pt": pb.PEFT_METHOD_PROMPT_TUNING,
    "prompt_tuning": pb.PEFT_METHOD_PROMPT_TUNING,
}
# The latest revision's flat arguments, by the method they belong to.
FLAT = {
    pb.PEFT_METHOD_LORA: (*LORA, "target_modules", "bias"),
    pb.PEFT_METHOD_PROMPT_TUNING: tuple(PROMPT_TUNING),
}
# A request that names no method gets the one of the block it sends.
PEFT_BY_BLOCK = {
    "lora_parameters": pb.PEFT_METHOD_LORA,
    "pt_parameters": pb.PEFT_METHOD_PROMPT_TUNING,
    None: pb.PEFT_METHOD_NONE,
}


def v1_view(request: legacy.TrainingRequest) -> pb.TrainingSpec:
    """The v1 spec an accepted legacy request stands for, field by field."""
    p = request.parameters
    view = pb.TrainingSpec(model_name=request.model_name, output_path=request.output_path)
    v = view.parameters
    v.SetInParent()
    v.base_model = p.model_name_or_path
    v.data_path = p.data_path
    for name in (*SHARED_PARAMETERS, *ADDED_PARAMETERS):
        if p.HasField(name):  # type: ignore[arg-type]
            setattr(v, name, getattr(p, name))
    if p.HasField("torch_dytpe"):
        v.torch_dtype = p.torch_dytpe
    if p.HasField("num_gpus"):
        view.resources.gpus = p.num_gpus
    block = p.WhichOneof("peft_method_parameters")
    flat = {kind: [n for n in names if sent(p, n)] for kind, names in FLAT.items()}
    assert not (block and any(flat.values())), "a request of both forms was accepted"
    if block:
        v.peft_method = PEFT_BY_NAME.get(p.peft_method.lower()) or PEFT_BY_BLOCK[block]
        _nested_view(p, block, v)
    else:
        chosen = [kind for kind, names in flat.items() if names]
        assert len(chosen) <= 1, "LoRA and prompt-tuning arguments were both accepted"
        v.peft_method = PEFT_BY_NAME.get(p.peft_method.lower()) or (
            chosen[0] if chosen else pb.PEFT_METHOD_NONE
        )
        assert chosen in ([], [v.peft_method]), "arguments of another method were accepted"
        if v.peft_method == pb.PEFT_METHOD_LORA and chosen:
            copy_sent(p, v.lora, FLAT[pb.PEFT_METHOD_LORA])
        elif v.peft_method == pb.PEFT_METHOD_PROMPT_TUNING and chosen:
            copy_sent(p, v.prompt_tuning, FLAT[pb.PEFT_METHOD_PROMPT_TUNING])
    return view


def _nested_view(p: legacy.TrainingParameters, block: str, v: pb.FineTuningParameters) -> None:
    if block == "lora_parameters":
        v.lora.SetInParent()
        copy_sent(p.lora_parameters, v.lora, (*LORA, "target_modules"))
        if p.lora_parameters.HasField("bias"):
            # The older revision's number: only 0, PEFT's "none", is taken.
            assert p.lora_parameters.bias == 0, p.lora_parameters.bias
            v.lora.bias = "none"
    else:
        v.prompt_tuning.SetInParent()
        copy_sent(p.pt_parameters, v.prompt_tuning, tuple(PROMPT_TUNING))


def sent(message: Message, name: str) -> bool:
    if name == "target_modules":
        return bool(getattr(message, name))
    return message.HasField(name)


def copy_sent(source: Message, target: Message, names: tuple[str, ...]) -> None:
    for name in names:
        if name == "target_modules":
            getattr(target, name).extend(getattr(source, name))
        elif source.HasField(name):
            setattr(target, name, getattr(source, name))


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


def every_latest_field_wrong_at_length() -> legacy.TrainingRequest:
    """The same for the latest revision's form, its flat arguments and
    added fields wrong too."""
    train = every_field_wrong_at_length()
    p = train.parameters
    p.ClearField("lora_parameters")
    p.r, p.lora_alpha, p.lora_dropout, p.bias = -1, -1, math.nan, "é" * 4097
    p.target_modules.extend(["é" * 129] * 64)
    p.validation_data_path = "/mnt/../" + "\x00" * 4000
    p.save_strategy = p.evaluation_strategy = "é" * 4097
    p.num_gpus = -(2**31)
    return train


@examples(EXAMPLES)
@example(train=every_field_wrong_at_length())
@example(train=every_latest_field_wrong_at_length())
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
