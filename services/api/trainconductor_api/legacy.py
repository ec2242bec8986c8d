"""The legacy contract translated to and from v1. Pure.

Legacy clients send `train_conductor.service.training` messages; they are
turned into a v1 `TrainingSpec` and validated by the same rules, and field
violations are reported under the legacy field names the client sent.
"""

from __future__ import annotations

from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_api.validation import Violation
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingRecord

_PEFT_METHODS = {
    "": pb.PEFT_METHOD_UNSPECIFIED,
    "none": pb.PEFT_METHOD_NONE,
    "lora": pb.PEFT_METHOD_LORA,
    "pt": pb.PEFT_METHOD_PROMPT_TUNING,
    "prompt_tuning": pb.PEFT_METHOD_PROMPT_TUNING,
}

_INFERRED_METHODS = {
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

# v1 field paths to the legacy names, most specific first.
_FIELD_NAMES = (
    ("spec.parameters.base_model", "parameters.model_name_or_path"),
    ("spec.parameters.torch_dtype", "parameters.torch_dytpe"),
    ("spec.parameters.lora", "parameters.lora_parameters"),
    ("spec.parameters.prompt_tuning", "parameters.pt_parameters"),
    ("spec.", ""),
)

_COPIED = (
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
)


# The same names in both contracts.
_PROMPT_TUNING_FIELDS = (
    "prompt_tuning_init",
    "num_virtual_tokens",
    "prompt_tuning_init_text",
    "tokenizer_name_or_path",
)


def spec_from_legacy(request: legacy.TrainingRequest) -> tuple[pb.TrainingSpec, list[Violation]]:
    p = request.parameters
    params = pb.FineTuningParameters(base_model=p.model_name_or_path, data_path=p.data_path)
    for name in _COPIED:
        if p.HasField(name):  # type: ignore[arg-type]
            setattr(params, name, getattr(p, name))
    if p.HasField("torch_dytpe"):
        params.torch_dtype = p.torch_dytpe
    violations: list[Violation] = []
    method = _PEFT_METHODS.get(p.peft_method.lower())
    chosen = p.WhichOneof("peft_method_parameters")
    inferred = _INFERRED_METHODS.get(chosen or "", pb.PEFT_METHOD_NONE)
    if method is None:
        violations.append(
            Violation("parameters.peft_method", "must be one of lora, pt, prompt_tuning, none")
        )
    # Original clients often sent only the parameters block and no method.
    params.peft_method = inferred if method in (None, pb.PEFT_METHOD_UNSPECIFIED) else method
    if chosen == "lora_parameters":
        lora = p.lora_parameters
        params.lora.target_modules.extend(lora.target_modules)
        for name in ("r", "lora_alpha", "lora_dropout"):
            if lora.HasField(name):  # type: ignore[arg-type]
                setattr(params.lora, name, getattr(lora, name))
        # The legacy `bias` is a float that no trainer argument accepts: dropped.
    elif chosen == "pt_parameters":
        pt = p.pt_parameters
        params.prompt_tuning.SetInParent()  # chosen, though it may set no field
        for name in _PROMPT_TUNING_FIELDS:
            if pt.HasField(name):  # type: ignore[arg-type]
                setattr(params.prompt_tuning, name, getattr(pt, name))
    spec = pb.TrainingSpec(
        model_name=request.model_name, output_path=request.output_path, parameters=params
    )
    return spec, violations


def legacy_field_name(field: str) -> str:
    for v1, old in _FIELD_NAMES:
        if field.startswith(v1):
            return old + field[len(v1) :]
    return field


def status_to_legacy(record: TrainingRecord) -> legacy.TrainingStatusResponse:
    response = legacy.TrainingStatusResponse(
        training_id=record.id,
        state=_STATES[record.phase],
        reasons=[f"{record.reason}: {record.message}"] if record.reason else [],
    )
    response.submission_timestamp.FromMilliseconds(record.create_time_ms)
    if record.finish_time_ms is not None:
        response.completion_timestamp.FromMilliseconds(record.finish_time_ms)
    return response
