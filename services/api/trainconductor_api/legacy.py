"""The legacy contract translated to and from v1. Pure.

Legacy clients send `train_conductor.service.training` messages from one of
two revisions of the original's file: the older one nests the LoRA and
prompt-tuning arguments (`lora_parameters`, `pt_parameters`), the latest one
has them flat in `TrainingParameters` and adds a few fields. Either form
becomes the same v1 `TrainingSpec`, validated by the same rules; field
violations are reported under the legacy names the client sent.
docs/legacy.md has the table of what each field becomes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_api.validation import Limits, Violation, validate_spec
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingRecord

_PEFT_METHODS = {
    "": pb.PEFT_METHOD_UNSPECIFIED,
    "none": pb.PEFT_METHOD_NONE,
    "lora": pb.PEFT_METHOD_LORA,
    "pt": pb.PEFT_METHOD_PROMPT_TUNING,
    "prompt_tuning": pb.PEFT_METHOD_PROMPT_TUNING,
}

_NESTED_METHODS = {
    "lora_parameters": pb.PEFT_METHOD_LORA,
    "pt_parameters": pb.PEFT_METHOD_PROMPT_TUNING,
}

_STATES = {
    Phase.PENDING: legacy.PENDING,
    Phase.QUEUED: legacy.QUEUED,
    Phase.RUNNING: legacy.RUNNING,
    Phase.SUSPENDED: legacy.SUSPENDED,
    Phase.COMPLETED: legacy.COMPLETED,
    Phase.CANCELED: legacy.CANCELED,
    Phase.FAILED: legacy.FAILED,
}

# Optional fields of the same name in legacy TrainingParameters and v1
# FineTuningParameters, both revisions'.
_COPIED = frozenset(
    {
        "num_train_epochs",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "weight_decay",
        "warmup_ratio",
        "lr_scheduler_type",
        "logging_steps",
        "fsdp",
        "fsdp_config",
        "include_tokens_per_second",
        "packing",
        "response_template",
        "dataset_text_field",
        "use_flash_attn",
        "model_max_length",
        # The latest revision's.
        "save_strategy",
        "overwrite_output_dir",
        "evaluation_strategy",
        "validation_data_path",
    }
)

# The LoRA and prompt-tuning arguments, under the same names in the latest
# revision's flat fields, the older revision's nested messages and v1's.
_LORA_FIELDS = ("r", "lora_alpha", "target_modules", "bias", "lora_dropout")
_PROMPT_TUNING_FIELDS = (
    "prompt_tuning_init",
    "num_virtual_tokens",
    "prompt_tuning_init_text",
    "tokenizer_name_or_path",
)
_KINDS = {pb.PEFT_METHOD_LORA: "a LoRA", pb.PEFT_METHOD_PROMPT_TUNING: "a prompt-tuning"}

# Fields only the latest revision has, besides the flat PEFT arguments.
_LATEST_ADDED = frozenset(
    {
        "save_strategy",
        "overwrite_output_dir",
        "num_gpus",
        "evaluation_strategy",
        "validation_data_path",
    }
)


@dataclass(frozen=True)
class Translation:
    """A legacy request as a v1 spec, what is wrong with it that v1
    validation can not see, and the form it came in (to name its fields)."""

    spec: pb.TrainingSpec
    violations: list[Violation]
    latest: bool  # sent a field only the latest revision has
    nested: str | None  # the older revision's block it sent, if any

    def legacy_field_name(self, field: str) -> str:
        """The legacy name of a v1 field path of `spec`."""
        for v1, old in self._field_names():
            if field.startswith(v1):
                return old + field[len(v1) :]
        return field

    def _field_names(self) -> Iterator[tuple[str, str]]:
        """v1 field paths to the legacy names, most specific first."""
        yield "spec.parameters.base_model", "parameters.model_name_or_path"
        # One number, spelled as the client's revision spells it.
        dtype = "torch_dtype" if self.latest else "torch_dytpe"
        yield "spec.parameters.torch_dtype", f"parameters.{dtype}"
        yield "spec.resources.gpus", "parameters.num_gpus"
        if self.nested:
            yield "spec.parameters.lora", "parameters.lora_parameters"
            yield "spec.parameters.prompt_tuning", "parameters.pt_parameters"
        else:
            yield "spec.parameters.lora.", "parameters."
            yield "spec.parameters.prompt_tuning.", "parameters."
        yield "spec.", ""


def spec_from_legacy(request: legacy.TrainingRequest) -> Translation:
    p = request.parameters
    # The fields the client set, read once rather than asked of each of the
    # forty names in turn: a request sets a handful of them.
    sent = _set_fields(p)
    spec = pb.TrainingSpec(model_name=request.model_name, output_path=request.output_path)
    params = spec.parameters  # not a copy, as a message given to the constructor would be
    params.SetInParent()  # a request without parameters is told which of them it lacks
    params.base_model, params.data_path = p.model_name_or_path, p.data_path
    for name in _COPIED.intersection(sent):
        setattr(params, name, sent[name])
    if "torch_dytpe" in sent:
        params.torch_dtype = sent["torch_dytpe"]
    if "num_gpus" in sent:
        spec.resources.gpus = sent["num_gpus"]

    flat = [name for name in (*_LORA_FIELDS, *_PROMPT_TUNING_FIELDS) if name in sent]
    nested = p.WhichOneof("peft_method_parameters")
    named = _PEFT_METHODS.get(p.peft_method.lower())
    violations: list[Violation] = []
    if named is None:
        violations.append(
            Violation("parameters.peft_method", "must be one of lora, pt, prompt_tuning, none")
        )
    if nested and flat:
        violations += _mixed_forms(p, nested, flat)
    elif nested:
        violations += _from_nested(p, nested, named, params)
    else:
        violations += _from_flat(p, sent, named, params)
    latest = bool(flat) or not _LATEST_ADDED.isdisjoint(sent)
    return Translation(spec, violations, latest=latest, nested=nested)


def legacy_violations(translation: Translation, limits: Limits) -> list[Violation]:
    """Everything wrong with the request, under the names its client sent."""
    return translation.violations + [
        Violation(translation.legacy_field_name(v.field), v.description)
        for v in validate_spec(translation.spec, limits)
    ]


def _set_fields(message: Message) -> dict[str, Any]:
    """The fields `message` has, by name: the optional ones set (to their
    default too), the repeated ones not empty."""
    return {field.name: value for field, value in message.ListFields()}


def _mixed_forms(p: legacy.TrainingParameters, nested: str, flat: Sequence[str]) -> list[Violation]:
    """Each flat argument and what it meets in the nested block: the same
    argument if the block has it, else the block."""
    in_block = _set_fields(getattr(p, nested))
    violations: list[Violation] = []
    named: set[str] = set()
    for name in flat:
        counterpart = f"parameters.{nested}"
        if name in in_block:
            counterpart += f".{name}"
        violations.append(
            Violation(
                f"parameters.{name}",
                f"is the latest revision's form and {counterpart} the older one's: send one form",
            )
        )
        if counterpart not in named:
            named.add(counterpart)
            violations.append(
                Violation(
                    counterpart,
                    f"is the older revision's form and parameters.{name} the latest one's: "
                    "send one form",
                )
            )
    return violations


def _from_nested(
    p: legacy.TrainingParameters,
    nested: str,
    named: pb.PeftMethod.ValueType | None,
    params: pb.FineTuningParameters,
) -> list[Violation]:
    # Original clients often sent only the parameters block and no method.
    chosen = _NESTED_METHODS[nested]
    params.peft_method = chosen if named in (None, pb.PEFT_METHOD_UNSPECIFIED) else named
    if nested == "pt_parameters":
        params.prompt_tuning.SetInParent()  # chosen, though it may set no field
        _copy(_set_fields(p.pt_parameters), params.prompt_tuning, _PROMPT_TUNING_FIELDS)
        return []
    lora = p.lora_parameters
    params.lora.SetInParent()
    _copy(_set_fields(lora), params.lora, [name for name in _LORA_FIELDS if name != "bias"])
    if not lora.HasField("bias"):
        return []
    # A number no trainer takes, where PEFT takes a name: 0 (no bias
    # trained) is "none"; any other number means nothing PEFT can do.
    if lora.bias == 0:
        params.lora.bias = "none"
        return []
    return [
        Violation(
            "parameters.lora_parameters.bias",
            "must be 0 (PEFT's bias 'none') or left out; for 'all' or 'lora_only', "
            "send parameters.bias, the latest revision's",
        )
    ]


def _from_flat(
    p: legacy.TrainingParameters,
    sent: Mapping[str, Any],
    named: pb.PeftMethod.ValueType | None,
    params: pb.FineTuningParameters,
) -> list[Violation]:
    groups = {
        pb.PEFT_METHOD_LORA: [n for n in _LORA_FIELDS if n in sent],
        pb.PEFT_METHOD_PROMPT_TUNING: [n for n in _PROMPT_TUNING_FIELDS if n in sent],
    }
    methods = [method for method, names in groups.items() if names]
    violations: list[Violation] = []
    if named in (None, pb.PEFT_METHOD_UNSPECIFIED):
        # As with the nested blocks, the arguments sent choose the method.
        params.peft_method = methods[0] if len(methods) == 1 else pb.PEFT_METHOD_NONE
        if named is not None and len(methods) > 1:
            listed = ", ".join(name for names in groups.values() for name in names)
            violations.append(
                Violation(
                    "parameters.peft_method",
                    f"must be lora or pt when both LoRA and prompt-tuning arguments are sent "
                    f"({listed})",
                )
            )
    else:
        params.peft_method = named
    for method, names in groups.items():
        if method == params.peft_method:
            block = params.lora if method == pb.PEFT_METHOD_LORA else params.prompt_tuning
            _copy(sent, block, names)
        elif named not in (None, pb.PEFT_METHOD_UNSPECIFIED):
            violations += [
                Violation(
                    f"parameters.{name}",
                    f"is {_KINDS[method]} argument, and peft_method is {p.peft_method!r}",
                )
                for name in names
            ]
    return violations


def _copy(sent: Mapping[str, Any], target: Message, names: Sequence[str]) -> None:
    """The arguments `names` that were sent, onto `target`."""
    for name in names:
        if name not in sent:
            continue
        if name == "target_modules":
            getattr(target, name).extend(sent[name])
        else:
            setattr(target, name, sent[name])


def status_to_legacy(record: TrainingRecord) -> legacy.TrainingStatusResponse:
    response = legacy.TrainingStatusResponse(
        training_id=record.id, state=_STATES[record.phase], reasons=_reasons(record)
    )
    response.submission_timestamp.FromMilliseconds(record.create_time_ms)
    if record.finish_time_ms is not None:
        response.completion_timestamp.FromMilliseconds(record.finish_time_ms)
    return response


def _reasons(record: TrainingRecord) -> list[str]:
    reasons = [f"{record.reason}: {record.message}"] if record.reason else []
    if record.cancel_requested and not record.phase.is_final:
        # The legacy state has no word for it: without this, a cancel of a
        # pending training would answer exactly as if nothing were asked.
        # First, as the latest news; the phase's own reason follows.
        reasons.insert(
            0,
            "CancelRequested: the cancel is recorded; the training stops "
            "when the controller acts on it",
        )
    return reasons
