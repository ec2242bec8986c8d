"""Spec files as people write them: what YAML reads unquoted is taken where
it is unambiguous, refused by name where it is not."""

from __future__ import annotations

import pytest
import yaml
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_client import SpecError, spec_from_dict


def spec(text: str) -> pb.TrainingSpec:
    return spec_from_dict(yaml.safe_load(text))


def test_whole_numbers_are_taken_as_the_text_or_seconds_a_field_wants() -> None:
    got = spec(
        "model_name: 2024\n"
        "resources: {cpu: 4, memory: 16Gi}\n"
        "labels: {priority: 1}\n"
        "deadline: 7200\n"
        "parameters: {baseModel: m, peft_method: lora}\n"
    )
    assert got.model_name == "2024"
    assert (got.resources.cpu, got.resources.memory) == ("4", "16Gi")
    assert dict(got.labels) == {"priority": "1"}
    assert got.deadline.seconds == 7200
    assert got.parameters.base_model == "m"  # protobuf's JSON names work too
    assert got.parameters.peft_method == pb.PEFT_METHOD_LORA


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        pytest.param(
            "parameters: {num_epochs: 3}",
            "spec.parameters.num_epochs: is not a field of FineTuningParameters; "
            "did you mean num_train_epochs?",
            id="a misspelt field",
        ),
        pytest.param(
            "labels: {gpu: yes}",
            "spec.labels['gpu']: must be text: quote it (YAML read True, a bool)",
            id="a yes that YAML reads as true",
        ),
        pytest.param(
            "labels: {version: 1.10}",
            "spec.labels['version']: must be text: quote it (YAML read 1.1, a float)",
            id="a version that YAML reads as a number",
        ),
        pytest.param("labels: [a, b]", "spec.labels: must be a mapping", id="labels as a list"),
    ],
)
def test_what_yaml_would_change_is_refused_naming_the_field(text: str, complaint: str) -> None:
    with pytest.raises(SpecError) as err:
        spec(text)
    assert str(err.value) == complaint
