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
        pytest.param(
            "labels: {team: }",
            "spec.labels['team']: must be text (YAML read None, a NoneType)",
            id="a label left empty",
        ),
        pytest.param(
            "resources: {gpus: two}",
            "spec.resources.gpus: must be a whole number (YAML read 'two', a str)",
            id="a count in words",
        ),
        pytest.param(
            "parameters: {learning_rate: yes}",
            "spec.parameters.learning_rate: must be a number (YAML read True, a bool)",
            id="a yes where a number belongs",
        ),
        pytest.param(
            "parameters: {peft_method: lorra}",
            "spec.parameters.peft_method: must be one of none, lora, prompt_tuning "
            "(YAML read 'lorra', a str)",
            id="a misspelt method",
        ),
        pytest.param(
            "parameters: {lora: {target_modules: q_proj}}",
            "spec.parameters.lora.target_modules: must be a list (YAML read 'q_proj', a str)",
            id="one module where a list belongs",
        ),
        pytest.param(
            "deadline: 2h",
            'spec.deadline: must be a number of seconds (7200) or a duration such as "7200s" '
            "(YAML read '2h', a str)",
            id="a deadline in hours",
        ),
        pytest.param(
            "resources: 1 gpu",
            "spec.resources: must be a mapping of Resources fields (YAML read '1 gpu', a str)",
            id="a section written as text",
        ),
    ],
)
def test_what_yaml_would_change_is_refused_naming_the_field(text: str, complaint: str) -> None:
    with pytest.raises(SpecError) as err:
        spec(text)
    assert str(err.value) == complaint


def test_every_problem_of_a_file_is_named_at_once_in_file_order() -> None:
    with pytest.raises(SpecError) as err:
        spec(
            "model_name: m\n"
            "ouput_path: /mnt/out\n"
            "parameters: {base_model: b, num_train_epochs: three, peft_method: lorra}\n"
            "resources: {gpus: many, cpus: 4}\n"
            "labels: {gpu: yes}\n"
        )
    assert [v.field for v in err.value.violations] == [
        "spec.ouput_path",
        "spec.parameters.num_train_epochs",
        "spec.parameters.peft_method",
        "spec.resources.gpus",
        "spec.resources.cpus",
        "spec.labels['gpu']",
    ]
    assert all(f"{v.field}: {v.description}" in str(err.value) for v in err.value.violations)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param("lora", pb.PEFT_METHOD_LORA, id="lower case"),
        pytest.param("prompt-tuning", pb.PEFT_METHOD_PROMPT_TUNING, id="with a dash"),
        pytest.param("pt", pb.PEFT_METHOD_PROMPT_TUNING, id="the short name"),
        pytest.param("PEFT_METHOD_LORA", pb.PEFT_METHOD_LORA, id="protobuf's own name"),
    ],
)
def test_a_method_is_taken_as_people_write_it(method: str, expected: int) -> None:
    assert spec(f"parameters: {{peft_method: {method}}}").parameters.peft_method == expected
