"""The legacy contract's two revisions as v1 specs: the same spec from
either form, refusals under the names the client sent, and the status a
legacy client reads."""

from __future__ import annotations

import pytest
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from trainconductor_api.legacy import legacy_violations, spec_from_legacy, status_to_legacy
from trainconductor_api.validation import Limits
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingRecord

LIMITS = Limits(max_gpus=8, allowed_path_prefixes=("/mnt/",))


def parameters(**fields: object) -> legacy.TrainingParameters:
    return legacy.TrainingParameters(
        model_name_or_path="ibm-granite/granite-3.0-2b-base",
        data_path="/mnt/data/train.jsonl",
        **fields,  # type: ignore[arg-type]
    )


def request(p: legacy.TrainingParameters) -> legacy.TrainingRequest:
    return legacy.TrainingRequest(model_name="granite", output_path="/mnt/out/g", parameters=p)


def refused(p: legacy.TrainingParameters) -> list[str]:
    return [v.field for v in legacy_violations(spec_from_legacy(request(p)), LIMITS)]


def spec_of(p: legacy.TrainingParameters) -> pb.TrainingSpec:
    translation = spec_from_legacy(request(p))
    assert legacy_violations(translation, LIMITS) == []
    return translation.spec


LORA = {"r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"], "lora_dropout": 0.05}
PROMPT_TUNING = {
    "prompt_tuning_init": "TEXT",
    "num_virtual_tokens": 8,
    "prompt_tuning_init_text": "Classify:",
    "tokenizer_name_or_path": "ibm-granite/granite-3.0-2b-base",
}


@pytest.mark.parametrize(
    ("older", "latest"),
    [
        pytest.param(
            parameters(peft_method="lora", lora_parameters=legacy.LORAParameters(**LORA)),  # type: ignore[arg-type]
            parameters(peft_method="lora", **LORA),
            id="LoRA with its method named",
        ),
        pytest.param(
            parameters(lora_parameters=legacy.LORAParameters(**LORA)),  # type: ignore[arg-type]
            parameters(**LORA),
            id="LoRA chosen by the arguments sent",
        ),
        pytest.param(
            parameters(pt_parameters=legacy.PTParameters(**PROMPT_TUNING)),  # type: ignore[arg-type]
            parameters(**PROMPT_TUNING),
            id="prompt tuning chosen by the arguments sent",
        ),
        pytest.param(
            parameters(
                peft_method="lora",
                lora_parameters=legacy.LORAParameters(r=4, bias=0),
            ),
            parameters(peft_method="lora", r=4, bias="none"),
            id="the older revision's bias 0 is PEFT's none",
        ),
        pytest.param(
            parameters(peft_method="none", torch_dytpe="bfloat16"),
            parameters(peft_method="none", torch_dytpe="bfloat16"),
            id="full fine-tuning, no PEFT arguments",
        ),
    ],
)
def test_either_revision_becomes_the_same_spec(
    older: legacy.TrainingParameters, latest: legacy.TrainingParameters
) -> None:
    assert spec_of(older) == spec_of(latest)


def test_what_the_latest_revision_added_reaches_the_spec() -> None:
    spec = spec_of(
        parameters(
            save_strategy="epoch",
            overwrite_output_dir=True,
            num_gpus=2,
            evaluation_strategy="steps",
            validation_data_path="/mnt/data/eval.jsonl",
            bias="lora_only",
        )
    )
    p = spec.parameters
    assert (p.save_strategy, p.evaluation_strategy) == ("epoch", "steps")
    assert p.overwrite_output_dir
    assert p.validation_data_path == "/mnt/data/eval.jsonl"
    assert spec.resources.gpus == 2
    assert (p.peft_method, p.lora.bias) == (pb.PEFT_METHOD_LORA, "lora_only")


@pytest.mark.parametrize(
    ("p", "fields"),
    [
        pytest.param(
            parameters(r=8, lora_parameters=legacy.LORAParameters(r=8)),
            ["parameters.r", "parameters.lora_parameters.r"],
            id="r flat and nested",
        ),
        pytest.param(
            parameters(lora_alpha=8, lora_parameters=legacy.LORAParameters(r=8)),
            ["parameters.lora_alpha", "parameters.lora_parameters"],
            id="a flat LoRA argument beside the nested block",
        ),
        pytest.param(
            parameters(r=8, pt_parameters=legacy.PTParameters(num_virtual_tokens=8)),
            ["parameters.r", "parameters.pt_parameters"],
            id="flat LoRA arguments beside the nested prompt-tuning block",
        ),
        pytest.param(
            parameters(
                target_modules=["q_proj"],
                bias="none",
                lora_parameters=legacy.LORAParameters(target_modules=["q_proj"]),
            ),
            [
                "parameters.target_modules",
                "parameters.lora_parameters.target_modules",
                "parameters.bias",
                "parameters.lora_parameters",
            ],
            id="each flat argument and what it meets",
        ),
        pytest.param(
            parameters(num_virtual_tokens=8, lora_parameters=legacy.LORAParameters()),
            ["parameters.num_virtual_tokens", "parameters.lora_parameters"],
            id="an empty nested block still chooses the older form",
        ),
    ],
)
def test_a_request_mixing_the_forms_is_refused_naming_both(
    p: legacy.TrainingParameters, fields: list[str]
) -> None:
    assert refused(p) == fields


@pytest.mark.parametrize(
    ("p", "fields"),
    [
        pytest.param(
            parameters(peft_method="lora", lora_parameters=legacy.LORAParameters(bias=0.5)),
            ["parameters.lora_parameters.bias"],
            id="the older revision's bias other than 0",
        ),
        pytest.param(
            parameters(lora_parameters=legacy.LORAParameters(bias=float("nan"))),
            ["parameters.lora_parameters.bias"],
            id="the older revision's bias not a number",
        ),
        pytest.param(
            parameters(bias="some"), ["parameters.bias"], id="the latest revision's unknown bias"
        ),
        pytest.param(
            parameters(peft_method="lora", r=0), ["parameters.r"], id="a flat argument out of range"
        ),
        pytest.param(
            parameters(target_modules=["q-proj"]),
            ["parameters.target_modules[0]"],
            id="a flat module list entry",
        ),
        pytest.param(
            parameters(lora_parameters=legacy.LORAParameters(r=0)),
            ["parameters.lora_parameters.r"],
            id="a nested argument out of range",
        ),
        pytest.param(
            parameters(peft_method="lora", num_virtual_tokens=8),
            ["parameters.num_virtual_tokens"],
            id="a prompt-tuning argument with the method lora",
        ),
        pytest.param(
            parameters(peft_method="none", r=8, prompt_tuning_init="TEXT"),
            ["parameters.r", "parameters.prompt_tuning_init"],
            id="PEFT arguments with the method none",
        ),
        pytest.param(
            parameters(r=8, num_virtual_tokens=8),
            ["parameters.peft_method"],
            id="both kinds of arguments and no method to choose",
        ),
        pytest.param(parameters(num_gpus=9), ["parameters.num_gpus"], id="more GPUs than allowed"),
        pytest.param(parameters(num_gpus=-1), ["parameters.num_gpus"], id="negative GPUs"),
        pytest.param(
            parameters(validation_data_path="/etc/passwd"),
            ["parameters.validation_data_path"],
            id="validation data outside the allowed prefixes",
        ),
        pytest.param(
            parameters(evaluation_strategy="steps"),
            ["parameters.evaluation_strategy"],
            id="evaluation without validation data",
        ),
        pytest.param(
            parameters(save_strategy="sometimes", evaluation_strategy="best"),
            ["parameters.save_strategy", "parameters.evaluation_strategy"],
            id="strategies the trainer does not have",
        ),
        pytest.param(
            parameters(num_gpus=1, torch_dytpe="float8"),
            ["parameters.torch_dtype"],
            id="field 22 under the latest revision's name in a latest request",
        ),
        pytest.param(
            parameters(torch_dytpe="float8"),
            ["parameters.torch_dytpe"],
            id="field 22 under the older revision's name otherwise",
        ),
    ],
)
def test_a_wrong_field_is_named_as_the_client_sent_it(
    p: legacy.TrainingParameters, fields: list[str]
) -> None:
    assert refused(p) == fields


def test_a_save_strategy_of_best_is_the_trainers_own() -> None:
    assert spec_of(parameters(save_strategy="best")).parameters.save_strategy == "best"


def record(phase: Phase, *, cancel_requested: bool, reason: str = "") -> TrainingRecord:
    return TrainingRecord(
        id="0193a1b2c3d4e5f60718",
        spec=lora_spec(),
        owner="ada",
        phase=phase,
        reason=reason,
        message="canceled on request" if reason else "",
        generation=2 if cancel_requested else 1,
        observed_generation=1,
        cancel_requested=cancel_requested,
        create_time_ms=1_800_000_000_000,
    )


def test_a_cancel_recorded_is_said_until_the_controller_acted() -> None:
    pending = status_to_legacy(record(Phase.PENDING, cancel_requested=True))
    assert pending.state == legacy.PENDING
    assert [r.split(":")[0] for r in pending.reasons] == ["CancelRequested"]

    canceled = status_to_legacy(record(Phase.CANCELED, cancel_requested=True, reason="Canceled"))
    assert list(canceled.reasons) == ["Canceled: canceled on request"]
    assert status_to_legacy(record(Phase.PENDING, cancel_requested=False)).reasons == []
