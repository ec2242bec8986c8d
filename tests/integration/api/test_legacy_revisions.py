"""Clients built from both revisions of the original's contract, against
the API over a real Redis: every field reaches the trainer's configuration,
either form makes the same training, and what the server can not honour
(both forms at once, a field it does not know) is refused by name."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from tests.support.grpc_errors import violated_fields
from tests.support.legacy_revisions import (
    LATEST,
    OLDER,
    REVISIONS,
    SHARED_VALUES,
    TRAININGS,
    LegacyTraining,
    Revision,
    compile_revision,
    newer_than_latest,
)
from trainconductor_controller.jobs import trainer_config

TRAIN = "/train_conductor.service.training.TrainConductor/Train"


@pytest.fixture(scope="module")
def revisions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Revision]:
    directory = tmp_path_factory.mktemp("revisions")
    return {
        name: compile_revision(messages, directory / name) for name, messages in REVISIONS.items()
    }


async def read_spec(
    trainings: pb_grpc.TrainingServiceAsyncStub, training_id: str
) -> pb.TrainingSpec:
    response = await trainings.GetTraining(pb.GetTrainingRequest(id=training_id))
    return response.training.spec


async def nothing_stored(trainings: pb_grpc.TrainingServiceAsyncStub) -> bool:
    return not (await trainings.ListTrainings(pb.ListTrainingsRequest())).trainings


async def refused_raw(channel: grpc.aio.Channel, path: str, request: bytes) -> list[str]:
    """The fields named in refusing `request`, sent as the bytes given."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return violated_fields(err.value)


@pytest.mark.parametrize("revision", ["older", "latest"])
def test_the_trainings_set_every_field_of_their_revision(
    revisions: dict[str, Revision], revision: str
) -> None:
    sent = {field for t in TRAININGS if t.revision == revision for field in t.fields()}
    assert sent == revisions[revision].parameter_names()


@pytest.mark.parametrize("training", [pytest.param(t, id=t.name) for t in TRAININGS])
async def test_every_field_reaches_the_trainer_configuration_or_the_gpus(
    channel: grpc.aio.Channel,
    trainings: pb_grpc.TrainingServiceAsyncStub,
    revisions: dict[str, Revision],
    training: LegacyTraining,
) -> None:
    revision = revisions[training.revision]
    job = await revision.method(channel, "Train")(training.request(revision))
    spec = await read_spec(trainings, job.training_id)
    config, gpus = training.expected()
    assert trainer_config(spec) == config
    assert spec.resources.gpus == gpus


async def test_either_revision_makes_the_same_training(
    channel: grpc.aio.Channel,
    trainings: pb_grpc.TrainingServiceAsyncStub,
    revisions: dict[str, Revision],
) -> None:
    older = next(t for t in TRAININGS if t.name == "older-lora")
    nested = older.parameters["lora_parameters"]
    flat = {
        k: v for k, v in older.parameters.items() if k not in ("lora_parameters", "torch_dytpe")
    }
    latest = LegacyTraining(
        "older-lora",
        "latest",
        {**flat, "torch_dtype": older.parameters["torch_dytpe"], **nested, "bias": "none"},
    )
    specs = []
    for training in (older, latest):
        revision = revisions[training.revision]
        job = await revision.method(channel, "Train")(training.request(revision))
        specs.append(await read_spec(trainings, job.training_id))
    assert specs[0] == specs[1]


@pytest.mark.parametrize(
    ("latest", "older", "fields"),
    [
        pytest.param(
            {"r": 8},
            {"lora_parameters": {"r": 8}},
            ["parameters.r", "parameters.lora_parameters.r"],
            id="r flat and nested",
        ),
        pytest.param(
            {"lora_alpha": 16, "target_modules": ["q_proj"]},
            {"pt_parameters": {"num_virtual_tokens": 8}},
            [
                "parameters.lora_alpha",
                "parameters.pt_parameters",
                "parameters.target_modules",
            ],
            id="flat LoRA arguments with the nested prompt-tuning block",
        ),
    ],
)
async def test_a_request_of_both_forms_is_refused_naming_both(
    channel: grpc.aio.Channel,
    trainings: pb_grpc.TrainingServiceAsyncStub,
    revisions: dict[str, Revision],
    latest: dict[str, object],
    older: dict[str, object],
    fields: list[str],
) -> None:
    base = {**SHARED_VALUES, "peft_method": "lora"}
    # Two messages on the wire, one after the other, are their merge: a
    # request holding what both clients set.
    both = b"".join(
        LegacyTraining("mixed", name, {**base, **part}).request(revisions[name]).SerializeToString()
        for name, part in (("latest", latest), ("older", older))
    )
    assert await refused_raw(channel, TRAIN, both) == fields
    assert await nothing_stored(trainings)


async def test_the_older_revisions_bias_other_than_zero_is_refused(
    channel: grpc.aio.Channel, revisions: dict[str, Revision]
) -> None:
    older = TRAININGS[0]
    parameters = {**older.parameters, "lora_parameters": {"r": 8, "bias": 0.5}}
    request = LegacyTraining("bias", "older", parameters).request(revisions["older"])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await revisions["older"].method(channel, "Train")(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["parameters.lora_parameters.bias"]


async def test_a_legacy_field_this_server_does_not_know_is_refused_by_number(
    channel: grpc.aio.Channel,
    trainings: pb_grpc.TrainingServiceAsyncStub,
    tmp_path: Path,
) -> None:
    newer = compile_revision(newer_than_latest("38 opt int32 max_steps"), tmp_path)
    training = LegacyTraining("newer", "newer", {**TRAININGS[2].parameters, "max_steps": 100})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await newer.method(channel, "Train")(training.request(newer))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["parameters.38"]
    assert "38" in (err.value.details() or "")
    assert await nothing_stored(trainings)


async def test_a_v1_field_this_server_does_not_know_is_refused_by_number(
    channel: grpc.aio.Channel, trainings: pb_grpc.TrainingServiceAsyncStub
) -> None:
    create = pb.CreateTrainingRequest(spec=lora_spec()).SerializeToString()
    # spec (1) > parameters (3) > field 99, a varint: merged into the request.
    unknown = b"\x0a\x05\x1a\x03\x98\x06\x01"
    path = "/trainconductor.v1.TrainingService/CreateTraining"
    assert await refused_raw(channel, path, create + unknown) == ["spec.parameters.99"]
    assert await nothing_stored(trainings)


def test_the_revisions_are_the_field_tables_not_this_projects_proto() -> None:
    # The older revision spells field 22 as this project's proto does; the
    # latest one as the original's latest file does.
    assert "22 opt string torch_dytpe" in OLDER["TrainingParameters"]
    assert "22 opt string torch_dtype" in LATEST["TrainingParameters"]
