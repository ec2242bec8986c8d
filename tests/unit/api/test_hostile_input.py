"""Input meant to hurt is refused, each with the field named."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from trainconductor_api.validation import Limits, validate_request_id, validate_spec

Mutation = Callable[[pb.TrainingSpec], None]


def _params(name: str, value: float) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        setattr(spec.parameters, name, value)

    return mutate


def _label(key: str, value: str) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        spec.labels[key] = value

    return mutate


def _output(path: str) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        spec.output_path = path

    return mutate


def _data(path: str) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        spec.parameters.data_path = path

    return mutate


def _set(field: str, value: str) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        *parents, name = field.split(".")
        target: object = spec
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)

    return mutate


FLOATS = ("num_train_epochs", "learning_rate", "weight_decay", "warmup_ratio", "logging_steps")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        *(
            pytest.param(_params(name, value), f"spec.parameters.{name}", id=f"{label} {name}")
            for name in FLOATS
            for label, value in (("NaN", math.nan), ("+inf", math.inf), ("-inf", -math.inf))
        ),
        pytest.param(
            _set("parameters.lora.lora_dropout", math.nan),  # type: ignore[arg-type]
            "spec.parameters.lora.lora_dropout",
            id="NaN LoRA dropout",
        ),
        pytest.param(_output("/mnt/output/../../etc"), "spec.output_path", id="'..' in a path"),
        pytest.param(_output(".."), "spec.output_path", id="a path that is only '..'"),
        pytest.param(
            _data("s3://bucket/a/../../b"), "spec.parameters.data_path", id="'..' in a URL"
        ),
        pytest.param(
            _data("s3://bucket/%2E%2E/other"), "spec.parameters.data_path", id="URL-encoded dots"
        ),
        pytest.param(_output("/mnt/out\\..\\etc"), "spec.output_path", id="backslash '..'"),
        pytest.param(_output("/mnt/out\x00.txt"), "spec.output_path", id="a NUL in a path"),
        pytest.param(_output("/mnt/out\n"), "spec.output_path", id="a newline in a path"),
        pytest.param(_label("bad key!", "v"), "spec.labels['bad key!']", id="punctuation in a key"),
        pytest.param(_label("team\n", "nlp"), "spec.labels['team\\n']", id="key with a newline"),
        pytest.param(_label("team", "nlp\n"), "spec.labels['team']", id="value with a newline"),
        pytest.param(_label("-team", "nlp"), "spec.labels['-team']", id="key starting with -"),
        pytest.param(
            _label("Example.COM/team", "x"),
            "spec.labels['Example.COM/team']",
            id="uppercase prefix",
        ),
        pytest.param(_label("a/b/c", "x"), "spec.labels['a/b/c']", id="a key with two slashes"),
        pytest.param(_label("x" * 64, "v"), f"spec.labels[{'x' * 64!r}]", id="key too long"),
        pytest.param(_label("", "v"), "spec.labels['']", id="empty key"),
        pytest.param(_set("model_name", "model\n"), "spec.model_name", id="model with a newline"),
        pytest.param(
            _set("model_name", "org/../../x"), "spec.model_name", id="'..' in a model name"
        ),
        pytest.param(_set("resources.cpu", "4\n"), "spec.resources.cpu", id="cpu with a newline"),
        pytest.param(
            _set("parameters.lr_scheduler_type", "$(curl evil)"),
            "spec.parameters.lr_scheduler_type",
            id="shell in a choice",
        ),
    ],
)
def test_hostile_values_are_refused(mutate: Mutation, field: str) -> None:
    spec = lora_spec()
    mutate(spec)
    assert [v.field for v in validate_spec(spec, Limits())] == [field]


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        pytest.param("s3://models/llama", True, id="below a prefix without a slash"),
        pytest.param("s3://models", True, id="the prefix itself"),
        pytest.param("s3://models-of-others/llama", False, id="a prefix of another bucket name"),
        pytest.param("/mnt/data/alpaca.jsonl", True, id="below a prefix with a slash"),
        pytest.param("/mnt/database/x", False, id="a sibling of a prefix with a slash"),
        pytest.param("file:///mnt/data/x", False, id="another scheme"),
        pytest.param("http://evil/x", False, id="a URL nobody allowed"),
    ],
)
def test_paths_must_lie_under_an_allowed_prefix(path: str, ok: bool) -> None:
    spec = lora_spec()
    spec.output_path = path
    spec.parameters.data_path = "/mnt/data/alpaca.jsonl"
    limits = Limits(allowed_path_prefixes=("s3://models", "/mnt/data/"))
    assert (validate_spec(spec, limits) == []) is ok


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("abc\n", id="a trailing newline"),
        pytest.param("a/b", id="a slash"),
        pytest.param("a b", id="a space"),
    ],
)
def test_hostile_request_ids_are_refused(request_id: str) -> None:
    assert [v.field for v in validate_request_id(request_id)] == ["request_id"]
