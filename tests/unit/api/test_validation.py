"""Every bad field is named; a good spec passes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from trainconductor_api import validation
from trainconductor_api.identity import Identity
from trainconductor_api.queueing import QueuePolicy
from trainconductor_api.validation import Limits, validate_request_id, validate_spec

Mutation = Callable[[pb.TrainingSpec], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        *parents, name = path.split(".")
        target: object = spec
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)

    return mutate


def _clear(path: str) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        *parents, name = path.split(".")
        target: object = spec
        for parent in parents:
            target = getattr(target, parent)
        target.ClearField(name)  # type: ignore[attr-defined]

    return mutate


def _prompt_tuning_with_lora(spec: pb.TrainingSpec) -> None:
    spec.parameters.peft_method = pb.PEFT_METHOD_PROMPT_TUNING


def _labels(labels: dict[str, str]) -> Mutation:
    def mutate(spec: pb.TrainingSpec) -> None:
        spec.labels.clear()
        spec.labels.update(labels)

    return mutate


def test_a_good_spec_has_no_violations() -> None:
    assert validate_spec(lora_spec(team="nlp"), Limits()) == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        pytest.param(_set("model_name", ""), "spec.model_name", id="empty model name"),
        pytest.param(_set("model_name", "x" * 300), "spec.model_name", id="model name too long"),
        pytest.param(
            _set("model_name", "-bad name"), "spec.model_name", id="model name with spaces"
        ),
        pytest.param(_set("output_path", ""), "spec.output_path", id="missing output path"),
        pytest.param(
            _set("parameters.base_model", "m\nx"),
            "spec.parameters.base_model",
            id="a line break in the base model",
        ),
        pytest.param(
            _set("output_path", "/mnt/output/../etc"), "spec.output_path", id="output path with .."
        ),
        pytest.param(_clear("parameters"), "spec.parameters", id="no parameters at all"),
        pytest.param(
            _set("parameters.base_model", ""), "spec.parameters.base_model", id="no base model"
        ),
        pytest.param(
            _set("parameters.data_path", "x" * 5000),
            "spec.parameters.data_path",
            id="oversized data path",
        ),
        pytest.param(
            _set("parameters.num_train_epochs", -1.0),
            "spec.parameters.num_train_epochs",
            id="negative epochs",
        ),
        pytest.param(
            _set("parameters.num_train_epochs", float("nan")),
            "spec.parameters.num_train_epochs",
            id="NaN epochs",
        ),
        pytest.param(
            _set("parameters.learning_rate", 5.0),
            "spec.parameters.learning_rate",
            id="learning rate above 1",
        ),
        pytest.param(
            _set("parameters.learning_rate", 0.0),
            "spec.parameters.learning_rate",
            id="learning rate of zero",
        ),
        pytest.param(
            _set("parameters.learning_rate", float("inf")),
            "spec.parameters.learning_rate",
            id="infinite learning rate",
        ),
        pytest.param(
            _set("parameters.per_device_train_batch_size", 0),
            "spec.parameters.per_device_train_batch_size",
            id="batch size of zero",
        ),
        pytest.param(
            _set("parameters.lr_scheduler_type", "sideways"),
            "spec.parameters.lr_scheduler_type",
            id="unknown scheduler",
        ),
        pytest.param(
            _set("parameters.peft_method", 42),
            "spec.parameters.peft_method",
            id="unknown PEFT method",
        ),
        pytest.param(
            _set("parameters.validation_data_path", "/mnt/data/../../etc/shadow"),
            "spec.parameters.validation_data_path",
            id="validation data path with ..",
        ),
        pytest.param(
            _set("parameters.save_strategy", "hourly"),
            "spec.parameters.save_strategy",
            id="a save strategy the trainer does not have",
        ),
        pytest.param(
            _set("parameters.evaluation_strategy", "best"),
            "spec.parameters.evaluation_strategy",
            id="best is a save strategy, not an evaluation one",
        ),
        pytest.param(
            _set("parameters.evaluation_strategy", "epoch"),
            "spec.parameters.evaluation_strategy",
            id="evaluation without validation data",
        ),
        pytest.param(
            _prompt_tuning_with_lora,
            "spec.parameters.lora",
            id="LoRA parameters with the prompt-tuning method",
        ),
        pytest.param(_set("parameters.lora.r", 0), "spec.parameters.lora.r", id="LoRA rank of 0"),
        pytest.param(
            _set("parameters.lora.lora_dropout", 1.5),
            "spec.parameters.lora.lora_dropout",
            id="LoRA dropout above 1",
        ),
        pytest.param(
            _set("resources.gpus", 64), "spec.resources.gpus", id="more GPUs than allowed"
        ),
        pytest.param(_set("resources.gpus", -1), "spec.resources.gpus", id="negative GPUs"),
        pytest.param(
            _set("resources.nodes", 65), "spec.resources.nodes", id="more nodes than allowed"
        ),
        pytest.param(_set("resources.nodes", -1), "spec.resources.nodes", id="negative nodes"),
        pytest.param(_set("max_retries", 11), "spec.max_retries", id="more retries than allowed"),
        pytest.param(_set("max_retries", -1), "spec.max_retries", id="negative retries"),
        pytest.param(_set("resources.memory", "lots"), "spec.resources.memory", id="bad memory"),
        pytest.param(_set("resources.cpu", "1; rm -rf /"), "spec.resources.cpu", id="bad cpu"),
        pytest.param(
            _labels({f"k{i}": "v" for i in range(100)}), "spec.labels", id="oversized label map"
        ),
        pytest.param(_labels({"bad key!": "v"}), "spec.labels['bad key!']", id="invalid label key"),
        pytest.param(_labels({"team": "x" * 64}), "spec.labels['team']", id="label value too long"),
    ],
)
def test_each_bad_field_is_named(mutate: Mutation, field: str) -> None:
    spec = lora_spec()
    mutate(spec)
    fields = [v.field for v in validate_spec(spec, Limits())]
    assert fields == [field]


def test_every_checked_parameter_is_an_optional_field() -> None:
    # The checks run over the fields a spec set: a name in their tables that
    # is not an optional field of the message would never be checked.
    fields = pb.FineTuningParameters.DESCRIPTOR.fields_by_name
    checked = [*validation._NUMBERS, *validation._CHOICES, *validation._TEXTS]
    assert [name for name in checked if name not in fields or not fields[name].has_presence] == []


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        pytest.param(-5, 0, id="negative"),
        pytest.param(0, 500_000_000, id="under a second, which no Job deadline can be"),
        pytest.param(0, 2_000_000_000, id="nanos past a second, which JSON can not print"),
        pytest.param(5, -1, id="nanos of the other sign"),
        pytest.param(30 * 24 * 3600, 1, id="a nanosecond past the longest"),
    ],
)
def test_a_deadline_is_whole_seconds_a_job_can_take(seconds: int, nanos: int) -> None:
    spec = lora_spec()
    spec.deadline.seconds, spec.deadline.nanos = seconds, nanos
    assert [v.field for v in validate_spec(spec, Limits())] == ["spec.deadline"]


@pytest.mark.parametrize("quantity", ["0", "0.0", "0m", "0Gi"])
def test_a_zero_quantity_is_refused(quantity: str) -> None:
    # It would leave the pod without a request, and without a memory limit.
    spec = lora_spec()
    spec.resources.memory = quantity
    assert [v.field for v in validate_spec(spec, Limits())] == ["spec.resources.memory"]


def test_a_spec_too_large_for_the_responses_that_carry_it_is_refused() -> None:
    spec = lora_spec()
    # Fields this server does not know (here number 1007, 300 KB of bytes)
    # are kept as sent, and count.
    unknown = pb.TrainingSpec.FromString(b"\xfa\x3e" + _varint(300_000) + b"x" * 300_000)
    spec.MergeFrom(unknown)
    assert [v.field for v in validate_spec(spec, Limits())] == ["spec"]


@pytest.mark.parametrize("name", ["queue", "priority"])
def test_a_queue_or_priority_too_long_is_refused_by_name_not_as_a_spec_too_large(
    name: str,
) -> None:
    spec = lora_spec()
    setattr(spec, name, "\U0001f600" * 70_000)  # 280 KB, past the spec's bound
    assert [v.field for v in validate_spec(spec, Limits())] == [f"spec.{name}"]
    for enabled in (False, True):
        assert QueuePolicy.of(enabled=enabled).violations(spec, Identity("ada")) == []


def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def test_paths_outside_the_allowed_prefixes_are_refused() -> None:
    limits = Limits(allowed_path_prefixes=("/mnt/data/",))
    fields = [v.field for v in validate_spec(lora_spec(), limits)]
    assert fields == ["spec.output_path"]
    spec = lora_spec()
    spec.output_path = "/mnt/data/out"
    spec.parameters.validation_data_path = "/home/eval.jsonl"
    fields = [v.field for v in validate_spec(spec, limits)]
    assert fields == ["spec.parameters.validation_data_path"]


def test_evaluation_with_validation_data_and_every_save_strategy_pass() -> None:
    spec = lora_spec()
    spec.parameters.validation_data_path = "/mnt/data/eval.jsonl"
    spec.parameters.evaluation_strategy = "steps"
    for strategy in ("no", "steps", "epoch", "best"):
        spec.parameters.save_strategy = strategy
        assert validate_spec(spec, Limits()) == []


@pytest.mark.parametrize(
    ("request_id", "ok"),
    [
        pytest.param("", True, id="no request id"),
        pytest.param("a7f3-retry:1", True, id="a usual request id"),
        pytest.param("x" * 200, False, id="request id too long"),
        pytest.param("with space", False, id="request id with a space"),
    ],
)
def test_request_ids(request_id: str, ok: bool) -> None:
    assert (validate_request_id(request_id) == []) is ok


@pytest.mark.parametrize(
    ("nodes", "max_retries", "ok"),
    [
        pytest.param(0, None, True, id="no nodes named: one"),
        pytest.param(4, 3, True, id="four nodes, three retries"),
        pytest.param(16, 0, True, id="the limits themselves, and no retry"),
        pytest.param(17, None, False, id="one node past the operator's limit"),
        pytest.param(2, 6, False, id="one retry past the operator's limit"),
    ],
)
def test_nodes_and_retries_within_the_operators_limits(
    nodes: int, max_retries: int | None, ok: bool
) -> None:
    spec = lora_spec()
    spec.resources.nodes = nodes
    if max_retries is not None:
        spec.max_retries = max_retries
    limits = Limits(max_nodes=16, max_retries=5, default_max_retries=2)
    assert (validate_spec(spec, limits) == []) is ok


@pytest.mark.parametrize(
    ("max_retries", "budget"),
    [
        pytest.param(None, 2, id="unset takes the operator's default"),
        pytest.param(0, 0, id="zero is asked for, not unset"),
        pytest.param(5, 5, id="its own"),
    ],
)
def test_the_retry_budget_is_the_specs_or_the_default(max_retries: int | None, budget: int) -> None:
    spec = lora_spec()
    if max_retries is not None:
        spec.max_retries = max_retries
    assert Limits(max_retries=5, default_max_retries=2).retry_budget(spec) == budget
