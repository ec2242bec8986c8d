"""The strategies draw every field the request messages have: a field added
to either API's proto is drawn by the property tests, or this fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from tests.property.requests import LEGACY_FIELDS, V1_FIELDS

# Messages drawn whole, as one field.
WHOLE = {"google.protobuf.Duration"}
# The legacy names of the blocks the strategies share with v1.
LEGACY_BLOCKS = {"lora_parameters": "lora", "pt_parameters": "prompt_tuning"}


def leaf_fields(message: Descriptor, path: str = "") -> Iterator[str]:
    for field in message.fields:
        name = f"{path}{field.name}"
        nested = field.message_type
        is_map = nested is not None and nested.GetOptions().map_entry
        if nested is None or is_map or nested.full_name in WHOLE:
            yield name
        else:
            yield from leaf_fields(nested, name + ".")
        if field.type == FieldDescriptor.TYPE_MESSAGE and not is_map:
            yield name  # its presence is drawn too


def drawn(path: str, names: tuple[str, ...], renames: dict[str, str]) -> bool:
    for old, new in renames.items():
        path = path.replace(old, new)
    # Strategies name a field by its last part, or by its block and last part.
    return any(path == n or path.endswith("." + n) for n in names)


@pytest.mark.parametrize(
    ("message", "names", "renames"),
    [
        pytest.param(pb.CreateTrainingRequest.DESCRIPTOR, V1_FIELDS, {}, id="v1"),
        pytest.param(legacy.TrainingRequest.DESCRIPTOR, LEGACY_FIELDS, LEGACY_BLOCKS, id="legacy"),
    ],
)
def test_every_field_of_the_request_is_drawn(
    message: Descriptor, names: tuple[str, ...], renames: dict[str, str]
) -> None:
    # The request's own message and the oneof blocks are drawn as a whole.
    blocks = {"spec", "spec.resources", "spec.parameters.lora", "spec.parameters.prompt_tuning",
              "parameters.lora_parameters", "parameters.pt_parameters"}  # fmt: skip
    missing = [
        path
        for path in leaf_fields(message)
        if path not in blocks and not drawn(path, names, renames)
    ]
    assert missing == []
