"""Fields a request carries that this server does not know are named by
their path and number, at any depth."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from trainconductor_api.unknown_fields import unknown_field_violations


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def nested(number: int, body: bytes) -> bytes:
    """A length-delimited field: a nested message, on the wire."""
    return tag(number, 2) + varint(len(body)) + body


def unknown_varint(number: int) -> bytes:
    return tag(number, 0) + varint(16)


@pytest.mark.parametrize(
    ("message", "wire", "fields"),
    [
        pytest.param(
            legacy.TrainingRequest,
            nested(3, unknown_varint(38)),
            ["parameters.38"],
            id="a legacy parameter newer than both revisions",
        ),
        pytest.param(
            legacy.TrainingRequest,
            nested(3, nested(50, unknown_varint(6))),
            ["parameters.lora_parameters.6"],
            id="inside the older revision's LoRA block",
        ),
        pytest.param(
            legacy.TrainingRequest,
            unknown_varint(4) + unknown_varint(4) + tag(9, 5) + b"\0\0\0\0",
            ["4", "9"],
            id="at the top, each number once",
        ),
        pytest.param(
            pb.CreateTrainingRequest,
            nested(1, nested(3, nested(30, unknown_varint(9)) + unknown_varint(40))),
            ["spec.parameters.40", "spec.parameters.lora.9"],
            id="v1, at two depths",
        ),
        pytest.param(
            pb.GetTrainingRequest,
            unknown_varint(2),
            ["2"],
            id="v1, a read",
        ),
    ],
)
def test_unknown_fields_are_named_by_path_and_number(
    message: type[Message], wire: bytes, fields: list[str]
) -> None:
    parsed = message.FromString(wire)
    assert [v.field for v in unknown_field_violations(parsed)] == fields


def test_a_request_of_known_fields_has_none() -> None:
    request = pb.CreateTrainingRequest(spec=lora_spec(team="nlp"), request_id="r-1")
    assert (
        unknown_field_violations(pb.CreateTrainingRequest.FromString(request.SerializeToString()))
        == []
    )
