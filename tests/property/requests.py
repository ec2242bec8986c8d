"""Whole requests of both APIs, every field drawn plausible or hostile.

Each request is drawn in one of three moods: every field plausible (most
such requests are valid), exactly one field hostile (the API must find it
among valid ones), or hostile fields anywhere. Shrinking leans towards the
first, so a failure is reported with as few hostile fields as it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf.duration_pb2 import Duration
from hypothesis import strategies as st
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from tests.property.values import (
    HOSTILE_BOOLS,
    HOSTILE_FLOATS,
    HOSTILE_INT32S,
    HOSTILE_LABEL_KEYS,
    HOSTILE_LABEL_VALUES,
    HOSTILE_PATH_VALUES,
    HOSTILE_TEXTS,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    ODD_LABEL_VALUES,
    PLAUSIBLE_LABEL_KEYS,
    PLAUSIBLE_LABEL_VALUES,
    PLAUSIBLE_MODULE_NAMES,
    PLAUSIBLE_NAMES,
    PLAUSIBLE_PATHS,
    PLAUSIBLE_QUANTITIES,
    PLAUSIBLE_REQUEST_IDS,
    PLAUSIBLE_TEXTS,
    plausible_floats,
)

LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
)
TORCH_DTYPES = ("auto", "float32", "float16", "bfloat16")
LORA_BIASES = ("none", "all", "lora_only")
EVALUATION_STRATEGIES = ("no", "steps", "epoch")
SAVE_STRATEGIES = (*EVALUATION_STRATEGIES, "best")
PROMPT_TUNING_INITS = ("RANDOM", "TEXT")
MAX_DEADLINE_SECONDS = 30 * 24 * 3600
LEGACY_PEFT_NAMES = (
    "",
    "none",
    "lora",
    "pt",
    "prompt_tuning",
    "LoRA",
    "PT",
    "None",
    "Prompt_Tuning",
)


class Field(NamedTuple):
    plausible: st.SearchStrategy[Any]
    hostile: st.SearchStrategy[Any]


def _optional(plausible: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Field:
    """An optional field: plausibly absent (None) or plausible; hostile is present."""
    return Field(st.one_of(st.none(), plausible), hostile)


def _number(low: float, high: float, *, open_low: bool = False) -> Field:
    return _optional(plausible_floats(low, high, exclude_low=open_low), HOSTILE_FLOATS)


def _count(low: int, high: int) -> Field:
    return _optional(st.integers(low, high), HOSTILE_INT32S)


def _text(plausible: st.SearchStrategy[str]) -> Field:
    return _optional(plausible, HOSTILE_TEXTS)


def _flag() -> Field:
    return _optional(st.booleans(), HOSTILE_BOOLS)


# Fine-tuning parameters both APIs carry, under the same names.
SHARED_PARAMETERS = {
    "num_train_epochs": _number(0, 1000, open_low=True),
    "per_device_train_batch_size": _count(1, 4096),
    "per_device_eval_batch_size": _count(1, 4096),
    "gradient_accumulation_steps": _count(1, 4096),
    "learning_rate": _number(0, 1, open_low=True),
    "weight_decay": _number(0, 1),
    "warmup_ratio": _number(0, 1),
    "lr_scheduler_type": _text(st.sampled_from(LR_SCHEDULERS)),
    "logging_steps": _number(0, 1e9, open_low=True),
    "fsdp": _text(st.sampled_from(["full_shard auto_wrap", "shard_grad_op", ""])),
    "fsdp_config": _text(PLAUSIBLE_TEXTS),
    "include_tokens_per_second": _flag(),
    "packing": _flag(),
    "response_template": _text(PLAUSIBLE_TEXTS),
    "dataset_text_field": _text(st.sampled_from(["output", "text", "messages"])),
    "use_flash_attn": _flag(),
    "model_max_length": _count(1, 1 << 20),
}

# The arguments v1 and the legacy contract's latest revision added (not
# the older revision's): drawn by `_added_parameters`.
ADDED_PARAMETERS = {
    "validation_data_path": _optional(PLAUSIBLE_PATHS, HOSTILE_PATH_VALUES),
    "save_strategy": _text(st.sampled_from(SAVE_STRATEGIES)),
    "evaluation_strategy": _text(st.sampled_from(EVALUATION_STRATEGIES)),
    "overwrite_output_dir": _flag(),
}

LORA = {
    "r": _count(1, 1024),
    "lora_alpha": _count(1, 4096),
    "lora_dropout": _optional(plausible_floats(0, 1, exclude_high=True), HOSTILE_FLOATS),
}

TARGET_MODULES = Field(
    st.lists(PLAUSIBLE_MODULE_NAMES, max_size=8),
    st.one_of(
        st.lists(st.one_of(HOSTILE_TEXTS, PLAUSIBLE_MODULE_NAMES), max_size=8),
        # Past the count bound, or at it with every entry wrong.
        st.lists(PLAUSIBLE_MODULE_NAMES, min_size=65, max_size=70),
        st.lists(st.sampled_from(["1", "q-proj", "a b", "é" * 129]), min_size=64, max_size=64),
    ),
)

PROMPT_TUNING = {
    "prompt_tuning_init": _text(st.sampled_from(PROMPT_TUNING_INITS)),
    "num_virtual_tokens": _count(1, 10_000),
    "prompt_tuning_init_text": _text(PLAUSIBLE_TEXTS),
    "tokenizer_name_or_path": _text(PLAUSIBLE_NAMES),
}

# Many labels with keys as long as the syntax allows and wrong values: a
# refusal that names every one of them is a large error.
_WIDE_LABELS = st.dictionaries(
    st.builds(lambda i: f"{'p' * 240}.example{i:03d}/{'n' * 63}", st.integers(0, 999)),
    st.sampled_from([v for v in ODD_LABEL_VALUES if v and v != "a" * 63]),
    min_size=20,
    max_size=32,
)

V1_SPEC = {
    "model_name": Field(PLAUSIBLE_NAMES, HOSTILE_TEXTS),
    "output_path": Field(PLAUSIBLE_PATHS, HOSTILE_PATH_VALUES),
    "parameters": Field(st.just(True), st.booleans()),
    "base_model": Field(PLAUSIBLE_NAMES, HOSTILE_TEXTS),
    "data_path": Field(PLAUSIBLE_PATHS, HOSTILE_PATH_VALUES),
    "torch_dtype": _text(st.sampled_from(TORCH_DTYPES)),
    "peft_method": Field(
        st.sampled_from(
            [
                pb.PEFT_METHOD_UNSPECIFIED,
                pb.PEFT_METHOD_NONE,
                pb.PEFT_METHOD_LORA,
                pb.PEFT_METHOD_PROMPT_TUNING,
            ]
        ),
        st.one_of(st.sampled_from(pb.PeftMethod.values()), HOSTILE_INT32S),
    ),
    "lora.bias": _text(st.sampled_from(LORA_BIASES)),
    "resources.gpus": Field(st.integers(0, 8), HOSTILE_INT32S),
    "resources.cpu": Field(PLAUSIBLE_QUANTITIES, HOSTILE_TEXTS),
    "resources.memory": Field(PLAUSIBLE_QUANTITIES, HOSTILE_TEXTS),
    "resources.nodes": Field(st.integers(0, 4), HOSTILE_INT32S),
    "max_retries": _optional(st.integers(0, 3), HOSTILE_INT32S),
    "deadline": _optional(
        st.builds(
            Duration,
            seconds=st.integers(1, MAX_DEADLINE_SECONDS - 1),
            nanos=st.integers(0, 999_999_999),
        ),
        st.builds(
            Duration,
            seconds=st.one_of(
                st.integers(INT64_MIN, INT64_MAX),
                st.sampled_from([0, -1, MAX_DEADLINE_SECONDS, MAX_DEADLINE_SECONDS + 1]),
            ),
            nanos=st.one_of(st.integers(INT32_MIN, INT32_MAX), st.sampled_from([0, -1, 1])),
        ),
    ),
    "labels": Field(
        st.dictionaries(PLAUSIBLE_LABEL_KEYS, PLAUSIBLE_LABEL_VALUES, max_size=5),
        st.one_of(
            st.dictionaries(HOSTILE_LABEL_KEYS, HOSTILE_LABEL_VALUES, min_size=1, max_size=6),
            st.dictionaries(PLAUSIBLE_LABEL_KEYS, PLAUSIBLE_LABEL_VALUES, min_size=33, max_size=40),
            _WIDE_LABELS,
        ),
    ),
    # The property API runs without queues: any queue or priority is
    # refused, a plausible name ("team-a") as much as a hostile one.
    "queue": Field(st.just(""), st.one_of(st.sampled_from(["team-a", "Team A"]), HOSTILE_TEXTS)),
    "priority": Field(st.just(""), st.one_of(st.sampled_from(["high", "-"]), HOSTILE_TEXTS)),
    "request_id": Field(
        PLAUSIBLE_REQUEST_IDS,
        st.one_of(HOSTILE_TEXTS, st.sampled_from(["a/b", "a" * 129, "/", "ä"])),
    ),
}

LEGACY = {
    "model_name": Field(PLAUSIBLE_NAMES, HOSTILE_TEXTS),
    "output_path": Field(PLAUSIBLE_PATHS, HOSTILE_PATH_VALUES),
    "parameters": Field(st.just(True), st.booleans()),
    "model_name_or_path": Field(PLAUSIBLE_NAMES, HOSTILE_TEXTS),
    "data_path": Field(PLAUSIBLE_PATHS, HOSTILE_PATH_VALUES),
    "torch_dytpe": _text(st.sampled_from(TORCH_DTYPES)),
    "peft_method": _optional(
        st.sampled_from(LEGACY_PEFT_NAMES),
        st.one_of(st.sampled_from(LEGACY_PEFT_NAMES), HOSTILE_TEXTS),
    ),
    # A float no trainer takes: 0 is PEFT's "none", any other is refused.
    "lora.bias": _optional(st.sampled_from([0.0, -0.0]), st.floats()),
    # The latest revision's: PEFT's name for it, and the training's GPUs.
    "bias": _text(st.sampled_from(LORA_BIASES)),
    "num_gpus": _optional(st.integers(0, 8), HOSTILE_INT32S),
    # Which revision's form the request takes: one or the other, or (never
    # valid) both.
    "revision": Field(st.sampled_from(["older", "latest"]), st.just("both")),
}

# The latest revision's flat LoRA and prompt-tuning arguments: drawn like
# the nested ones, hostile on their own.
FLAT_LORA = (*LORA, "target_modules")
FLAT_PROMPT_TUNING = tuple(PROMPT_TUNING)

_SHARED_FIELDS = (
    *SHARED_PARAMETERS,
    "peft_parameters",
    *(f"lora.{name}" for name in LORA),
    "lora.target_modules",
    *(f"prompt_tuning.{name}" for name in PROMPT_TUNING),
)
V1_FIELDS = (*V1_SPEC, *_SHARED_FIELDS, *ADDED_PARAMETERS)
LEGACY_FIELDS = (
    *LEGACY,
    *_SHARED_FIELDS,
    *ADDED_PARAMETERS,
    *FLAT_LORA,
    *FLAT_PROMPT_TUNING,
)

_MOODS = st.sampled_from(["plausible", "one hostile field", "hostile anywhere"])


@dataclass(frozen=True)
class Mood:
    """Which fields of one request get hostile values."""

    draw: st.DrawFn
    hostile: frozenset[str]

    def value(self, name: str, field: Field) -> Any:
        return self.draw(field.hostile if name in self.hostile else field.plausible)

    def set(self, message: Any, name: str, field: Field, key: str = "") -> None:
        """Sets the field `name` of `message` unless the value drawn is None."""
        value = self.value(key or name, field)
        if value is not None:
            setattr(message, name, value)


def draw_mood(draw: st.DrawFn, fields: Sequence[str]) -> Mood:
    mood = draw(_MOODS)
    if mood == "plausible":
        return Mood(draw, frozenset())
    if mood == "one hostile field":
        return Mood(draw, frozenset([draw(st.sampled_from(fields))]))
    anywhere = st.frozensets(st.sampled_from(fields), min_size=2, max_size=len(fields) // 3)
    return Mood(draw, draw(anywhere))


def _shared_parameters(
    mood: Mood, target: pb.FineTuningParameters | legacy.TrainingParameters
) -> None:
    for name, field in SHARED_PARAMETERS.items():
        mood.set(target, name, field)


def _added_parameters(
    mood: Mood, target: pb.FineTuningParameters | legacy.TrainingParameters
) -> None:
    for name, field in ADDED_PARAMETERS.items():
        mood.set(target, name, field)
    # Evaluation needs evaluation data: plausibly asked for only with it.
    evaluates = target.evaluation_strategy in ("steps", "epoch")
    if evaluates and not target.validation_data_path and "evaluation_strategy" not in mood.hostile:
        target.ClearField("evaluation_strategy")


def _lora(mood: Mood, lora: pb.LoraParameters | legacy.LORAParameters) -> None:
    lora.SetInParent()
    for name, field in LORA.items():
        mood.set(lora, name, field, key=f"lora.{name}")
    lora.target_modules.extend(mood.value("lora.target_modules", TARGET_MODULES))


def _prompt_tuning(mood: Mood, pt: pb.PromptTuningParameters | legacy.PTParameters) -> None:
    pt.SetInParent()
    for name, field in PROMPT_TUNING.items():
        mood.set(pt, name, field, key=f"prompt_tuning.{name}")


_V1_BLOCKS = st.sampled_from(["", "lora", "prompt_tuning"])
_V1_MATCHING_BLOCK = {
    pb.PEFT_METHOD_LORA: st.sampled_from(["", "lora"]),
    pb.PEFT_METHOD_PROMPT_TUNING: st.sampled_from(["", "prompt_tuning"]),
}


def _v1_parameters(mood: Mood, p: pb.FineTuningParameters) -> None:
    p.SetInParent()
    mood.set(p, "base_model", V1_SPEC["base_model"])
    mood.set(p, "data_path", V1_SPEC["data_path"])
    _shared_parameters(mood, p)
    mood.set(p, "torch_dtype", V1_SPEC["torch_dtype"])
    _added_parameters(mood, p)
    mood.set(p, "peft_method", V1_SPEC["peft_method"])  # unknown numbers included
    block = mood.value(
        "peft_parameters",
        Field(_V1_MATCHING_BLOCK.get(p.peft_method, st.just("")), _V1_BLOCKS),
    )
    if block == "lora":
        _lora(mood, p.lora)
        mood.set(p.lora, "bias", V1_SPEC["lora.bias"], key="lora.bias")
    elif block == "prompt_tuning":
        _prompt_tuning(mood, p.prompt_tuning)


@st.composite
def create_training_requests(draw: st.DrawFn) -> pb.CreateTrainingRequest:
    """A v1 `CreateTrainingRequest` with its `TrainingSpec` and every nested message."""
    mood = draw_mood(draw, V1_FIELDS)
    request = pb.CreateTrainingRequest()
    spec = request.spec
    mood.set(spec, "model_name", V1_SPEC["model_name"])
    mood.set(spec, "output_path", V1_SPEC["output_path"])
    if mood.value("parameters", V1_SPEC["parameters"]):
        _v1_parameters(mood, spec.parameters)
    if draw(st.booleans()):
        spec.resources.SetInParent()
        for name in ("gpus", "cpu", "memory", "nodes"):
            mood.set(spec.resources, name, V1_SPEC[f"resources.{name}"], key=f"resources.{name}")
    deadline = mood.value("deadline", V1_SPEC["deadline"])
    if deadline is not None:
        spec.deadline.CopyFrom(deadline)
    spec.labels.update(mood.value("labels", V1_SPEC["labels"]))
    mood.set(spec, "queue", V1_SPEC["queue"])
    mood.set(spec, "priority", V1_SPEC["priority"])
    mood.set(spec, "max_retries", V1_SPEC["max_retries"])
    mood.set(request, "request_id", V1_SPEC["request_id"])
    return request


_LEGACY_BLOCKS = st.sampled_from(["", "lora", "pt"])
# With no method named, the block chooses it.
_LEGACY_MATCHING_BLOCK = {
    "": _LEGACY_BLOCKS,
    "lora": st.sampled_from(["", "lora"]),
    "pt": st.sampled_from(["", "pt"]),
    "prompt_tuning": st.sampled_from(["", "pt"]),
}


def _legacy_parameters(mood: Mood, p: legacy.TrainingParameters) -> None:
    p.SetInParent()
    mood.set(p, "model_name_or_path", LEGACY["model_name_or_path"])
    mood.set(p, "data_path", LEGACY["data_path"])
    _shared_parameters(mood, p)
    mood.set(p, "torch_dytpe", LEGACY["torch_dytpe"])
    mood.set(p, "peft_method", LEGACY["peft_method"])
    revision = mood.value("revision", LEGACY["revision"])
    if revision in ("older", "both"):
        _nested_peft(mood, p)
    if revision in ("latest", "both"):
        _added_parameters(mood, p)
        mood.set(p, "num_gpus", LEGACY["num_gpus"])
        _flat_peft(mood, p, with_nested=revision == "both")


def _nested_peft(mood: Mood, p: legacy.TrainingParameters) -> None:
    plausible = _LEGACY_MATCHING_BLOCK.get(p.peft_method.lower(), st.just(""))
    block = mood.value("peft_parameters", Field(plausible, _LEGACY_BLOCKS))
    if block == "lora":
        _lora(mood, p.lora_parameters)
        mood.set(p.lora_parameters, "bias", LEGACY["lora.bias"], key="lora.bias")
    elif block == "pt":
        _prompt_tuning(mood, p.pt_parameters)


def _flat_peft(mood: Mood, p: legacy.TrainingParameters, *, with_nested: bool) -> None:
    """The latest revision's flat arguments of the method named (or of one
    method, which they then choose); of both, or beside a nested block,
    when hostile."""
    plausible = _LEGACY_MATCHING_BLOCK.get(p.peft_method.lower(), st.just(""))
    group = mood.value("peft_parameters", Field(plausible, _LEGACY_BLOCKS))
    if with_nested and not group:
        group = "lora"  # both forms, as the revision drawn says
    hostile = "peft_parameters" in mood.hostile
    if group == "lora" or (hostile and mood.draw(st.booleans())):
        for name, field in LORA.items():
            mood.set(p, name, field)
        p.target_modules.extend(mood.value("target_modules", TARGET_MODULES))
        mood.set(p, "bias", LEGACY["bias"])
    if group == "pt" or (hostile and mood.draw(st.booleans())):
        for name, field in PROMPT_TUNING.items():
            mood.set(p, name, field)


@st.composite
def legacy_training_requests(draw: st.DrawFn) -> legacy.TrainingRequest:
    """A legacy `TrainingRequest` with its `TrainingParameters` and every nested message."""
    mood = draw_mood(draw, LEGACY_FIELDS)
    request = legacy.TrainingRequest()
    mood.set(request, "model_name", LEGACY["model_name"])
    mood.set(request, "output_path", LEGACY["output_path"])
    if mood.value("parameters", LEGACY["parameters"]):
        _legacy_parameters(mood, request.parameters)
    return request
