"""Validation of a training spec: pure, and naming every offending field.

Returns the violations rather than raising, so a caller can report all of
them at once (as `google.rpc.BadRequest` field violations).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from trainconductor.v1 import training_service_pb2 as pb


@dataclass(frozen=True)
class Violation:
    field: str
    description: str


@dataclass(frozen=True)
class Limits:
    max_gpus: int = 8
    allowed_path_prefixes: Sequence[str] = ()
    # Most nodes one training may run on (its gpus are per node).
    max_nodes: int = 64
    # The retry budget a spec may ask for, and the one it gets when it asks none.
    max_retries: int = 10
    default_max_retries: int = 0

    def retry_budget(self, spec: pb.TrainingSpec) -> int:
        """The retries a valid spec gets: its own, or the default."""
        return spec.max_retries if spec.HasField("max_retries") else self.default_max_retries


MAX_STRING = 4096
MAX_NAME = 253
MAX_LABELS = 32
MAX_TARGET_MODULES = 64
MAX_DEADLINE_SECONDS = 30 * 24 * 3600
# Well above the largest spec the field limits allow (about 160 KB); only
# fields this server does not know could go beyond, and the services refuse
# those first (unknown_fields.py). Bounded all the same, so that a training
# always fits the responses that carry it.
MAX_SPEC_BYTES = 256 * 1024

# Patterns are applied with fullmatch: `$` alone also matches before a
# trailing newline, which would let "team\n" pass as a label key.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# "%2e%2e" is ".." to whatever decodes the URL later.
_ENCODED_DOT = re.compile(r"%2e", re.IGNORECASE)
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")

LR_SCHEDULERS = frozenset(
    {
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
        "inverse_sqrt",
        "reduce_lr_on_plateau",
    }
)
TORCH_DTYPES = frozenset({"auto", "float32", "float16", "bfloat16"})
LORA_BIASES = frozenset({"none", "all", "lora_only"})
PROMPT_TUNING_INITS = frozenset({"RANDOM", "TEXT"})
# The Hugging Face trainer's own choices (IntervalStrategy, SaveStrategy).
EVALUATION_STRATEGIES = frozenset({"no", "steps", "epoch"})
SAVE_STRATEGIES = EVALUATION_STRATEGIES | {"best"}
PEFT_METHODS = frozenset(pb.PeftMethod.values())

# Optional fields of FineTuningParameters, checked when set: numbers and
# their ranges (low, high, whether low itself is excluded), names
# from a fixed choice, and free text of bounded length.
_NUMBERS: dict[str, tuple[float, float, bool]] = {
    "num_train_epochs": (0, 1000, True),
    "per_device_train_batch_size": (1, 4096, False),
    "per_device_eval_batch_size": (1, 4096, False),
    "gradient_accumulation_steps": (1, 4096, False),
    "learning_rate": (0, 1, True),
    "weight_decay": (0, 1, False),
    "warmup_ratio": (0, 1, False),
    "logging_steps": (0, 1e9, True),
    "model_max_length": (1, 1 << 20, False),
}
_CHOICES = {
    "lr_scheduler_type": LR_SCHEDULERS,
    "torch_dtype": TORCH_DTYPES,
    "save_strategy": SAVE_STRATEGIES,
    "evaluation_strategy": EVALUATION_STRATEGIES,
}
_TEXTS = frozenset({"fsdp", "fsdp_config", "response_template", "dataset_text_field"})


def validate_request_id(request_id: str) -> list[Violation]:
    if request_id and not _REQUEST_ID.fullmatch(request_id):
        return [Violation("request_id", "must be 1-128 characters of A-Z a-z 0-9 . _ : -")]
    return []


def validate_spec(spec: pb.TrainingSpec, limits: Limits) -> list[Violation]:
    violations = list(_spec(spec, limits))
    # Only fields this server does not know can take a spec that passes the
    # limits above past this bound: said only then, so that every other
    # refusal names its field.
    if not violations and spec.ByteSize() > MAX_SPEC_BYTES:
        violations.append(
            Violation(
                "spec",
                f"must encode to at most {MAX_SPEC_BYTES} bytes (fields unknown here count)",
            )
        )
    return violations


def _spec(spec: pb.TrainingSpec, limits: Limits) -> Iterator[Violation]:
    if not spec.model_name:
        yield Violation("spec.model_name", "is required")
    elif (
        len(spec.model_name) > MAX_NAME
        or not _MODEL_NAME.fullmatch(spec.model_name)
        or ".." in spec.model_name.split("/")  # a name, but trainers may make a path of it
    ):
        yield Violation(
            "spec.model_name",
            f"must be at most {MAX_NAME} characters of letters, digits and . _ / -, "
            "starting with a letter or digit",
        )
    yield from _path("spec.output_path", spec.output_path, limits)
    if not spec.HasField("parameters"):
        yield Violation("spec.parameters", "is required")
    else:
        yield from _parameters(spec.parameters, limits)
    yield from _resources(spec.resources, limits)
    if spec.HasField("max_retries") and not 0 <= spec.max_retries <= limits.max_retries:
        yield Violation(
            "spec.max_retries",
            f"must be in [0, {limits.max_retries}]; leave it out for the default "
            f"({limits.default_max_retries})",
        )
    if spec.HasField("deadline"):
        # Whole seconds are what a Job's activeDeadlineSeconds takes; nanos
        # outside [0, 1e9) make a Duration no JSON client can print.
        deadline = spec.deadline
        within = (1, 0) <= (deadline.seconds, deadline.nanos) <= (MAX_DEADLINE_SECONDS, 0)
        if not (within and 0 <= deadline.nanos < 10**9):
            yield Violation("spec.deadline", f"must be between 1s and {MAX_DEADLINE_SECONDS}s")
    yield from _labels(spec.labels)
    # Whether a queue or priority is taken and well formed is the queue
    # policy's to say; bounded here so that no named field can make the
    # spec too large to carry.
    for name in ("queue", "priority"):
        if len(getattr(spec, name)) > MAX_NAME:
            yield Violation(f"spec.{name}", f"must be at most {MAX_NAME} characters")


def _path(field: str, value: str, limits: Limits) -> Iterator[Violation]:
    if not value:
        yield Violation(field, "is required")
    elif len(value) > MAX_STRING:
        yield Violation(field, f"must be at most {MAX_STRING} characters")
    elif (
        ".." in value.replace("\\", "/").split("/")
        or _ENCODED_DOT.search(value)
        or _CONTROL_CHARACTER.search(value)
    ):
        yield Violation(field, "must not contain '..' segments, encoded dots or control characters")
    elif limits.allowed_path_prefixes and not any(
        _under(value, p) for p in limits.allowed_path_prefixes
    ):
        allowed = ", ".join(limits.allowed_path_prefixes)
        yield Violation(field, f"must start with one of: {allowed}")


def _under(value: str, prefix: str) -> bool:
    """`value` is `prefix` or below it: the prefix "s3://models" allows
    "s3://models/x", not "s3://models-of-someone-else/x"."""
    if prefix.endswith("/"):
        return value.startswith(prefix)
    return value == prefix or value.startswith(prefix + "/")


def _parameters(p: pb.FineTuningParameters, limits: Limits) -> Iterator[Violation]:
    prefix = "spec.parameters."
    if not p.base_model:
        yield Violation(prefix + "base_model", "is required")
    elif len(p.base_model) > MAX_STRING:
        yield Violation(prefix + "base_model", f"must be at most {MAX_STRING} characters")
    elif _CONTROL_CHARACTER.search(p.base_model):
        # A hub id or a path, handed to the trainer as is: no line breaks or NULs.
        yield Violation(prefix + "base_model", "must not hold control characters")
    yield from _path(prefix + "data_path", p.data_path, limits)
    # Empty is none to the trainer, as absent is.
    if p.validation_data_path:
        yield from _path(prefix + "validation_data_path", p.validation_data_path, limits)
    elif p.evaluation_strategy in EVALUATION_STRATEGIES - {"no"}:
        # The trainer would stop at its start for want of evaluation data,
        # after the wait for a GPU.
        yield Violation(prefix + "evaluation_strategy", "needs validation_data_path")

    # The set fields, read once: a spec sets a handful of the optional ones,
    # and asking each of them in turn costs more than the checks.
    for field, value in p.ListFields():
        name = field.name
        if name in _NUMBERS:
            low, high, low_open = _NUMBERS[name]
            number = float(value)
            if not math.isfinite(number):
                yield Violation(prefix + name, "must be a finite number")
            elif number < low or number > high or (low_open and number == low):
                bound = "(" if low_open else "["
                yield Violation(prefix + name, f"must be in {bound}{low:g}, {high:g}]")
        elif name in _CHOICES:
            allowed = _CHOICES[name]
            if value not in allowed:
                yield Violation(prefix + name, f"must be one of {', '.join(sorted(allowed))}")
        elif name in _TEXTS and len(value) > MAX_STRING:
            yield Violation(prefix + name, f"must be at most {MAX_STRING} characters")

    method = p.peft_method
    if method not in PEFT_METHODS:
        yield Violation(prefix + "peft_method", "is not a known PEFT method")
        return
    chosen = p.WhichOneof("peft_parameters")
    if chosen == "lora" and method != pb.PEFT_METHOD_LORA:
        yield Violation(prefix + "lora", "is only allowed with peft_method PEFT_METHOD_LORA")
    if chosen == "prompt_tuning" and method != pb.PEFT_METHOD_PROMPT_TUNING:
        yield Violation(
            prefix + "prompt_tuning", "is only allowed with peft_method PEFT_METHOD_PROMPT_TUNING"
        )
    if chosen == "lora":
        yield from _lora(p.lora, prefix + "lora.")
    if chosen == "prompt_tuning":
        yield from _prompt_tuning(p.prompt_tuning, prefix + "prompt_tuning.")


def _lora(lora: pb.LoraParameters, prefix: str) -> Iterator[Violation]:
    if lora.HasField("r") and not 1 <= lora.r <= 1024:
        yield Violation(prefix + "r", "must be in [1, 1024]")
    if lora.HasField("lora_alpha") and not 1 <= lora.lora_alpha <= 4096:
        yield Violation(prefix + "lora_alpha", "must be in [1, 4096]")
    if lora.HasField("lora_dropout") and not (
        math.isfinite(lora.lora_dropout) and 0 <= lora.lora_dropout < 1
    ):
        yield Violation(prefix + "lora_dropout", "must be in [0, 1)")
    if lora.HasField("bias") and lora.bias not in LORA_BIASES:
        yield Violation(prefix + "bias", f"must be one of {', '.join(sorted(LORA_BIASES))}")
    if len(lora.target_modules) > MAX_TARGET_MODULES:
        yield Violation(prefix + "target_modules", f"must list at most {MAX_TARGET_MODULES}")
    for i, module in enumerate(lora.target_modules):
        if len(module) > 128 or not _MODULE.fullmatch(module):
            yield Violation(f"{prefix}target_modules[{i}]", "must be a module name like q_proj")


def _prompt_tuning(pt: pb.PromptTuningParameters, prefix: str) -> Iterator[Violation]:
    if pt.HasField("num_virtual_tokens") and not 1 <= pt.num_virtual_tokens <= 10000:
        yield Violation(prefix + "num_virtual_tokens", "must be in [1, 10000]")
    if pt.HasField("prompt_tuning_init") and pt.prompt_tuning_init not in PROMPT_TUNING_INITS:
        yield Violation(prefix + "prompt_tuning_init", "must be RANDOM or TEXT")
    for name in ("prompt_tuning_init_text", "tokenizer_name_or_path"):
        if pt.HasField(name) and len(getattr(pt, name)) > MAX_STRING:
            yield Violation(prefix + name, f"must be at most {MAX_STRING} characters")


def _resources(r: pb.Resources, limits: Limits) -> Iterator[Violation]:
    if not 0 <= r.gpus <= limits.max_gpus:
        yield Violation("spec.resources.gpus", f"must be in [0, {limits.max_gpus}] (per node)")
    if not 0 <= r.nodes <= limits.max_nodes:
        yield Violation(
            "spec.resources.nodes", f"must be in [1, {limits.max_nodes}]; 0 or unset means 1"
        )
    for name, value in (("cpu", r.cpu), ("memory", r.memory)):
        if not value:
            continue
        quantity = _QUANTITY.fullmatch(value) if len(value) <= 32 else None
        if quantity is None:
            yield Violation(
                f"spec.resources.{name}", "must be a Kubernetes quantity such as 4, 500m or 16Gi"
            )
        elif float(quantity["number"]) == 0:
            # "0" would give the pod no request and, for memory, no limit at all.
            yield Violation(
                f"spec.resources.{name}", "must be more than 0; leave it out for the default"
            )


def _labels(labels: Mapping[str, str]) -> Iterator[Violation]:
    if not labels:
        return
    items = dict(labels)
    if len(items) > MAX_LABELS:
        yield Violation("spec.labels", f"must have at most {MAX_LABELS} entries")
        return
    for key, value in sorted(items.items()):
        if not is_label_key(key):
            yield Violation(
                f"spec.labels[{key[:64]!r}]",
                "key must be a Kubernetes label key: an optional DNS prefix and '/', then "
                "at most 63 characters of letters, digits, - _ . starting and ending "
                "alphanumeric",
            )
        elif value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
            yield Violation(
                f"spec.labels[{key!r}]",
                "value must be at most 63 characters of letters, digits, - _ . starting and "
                "ending alphanumeric",
            )


def is_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    # "/name" has an empty prefix, which Kubernetes refuses.
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.fullmatch(name))
