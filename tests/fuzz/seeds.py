"""The fuzzer's starting inputs: valid requests of both APIs, with every
field set somewhere, and a few invalid ones, so that mutations start from
messages that get past decoding and deep into validation."""

from __future__ import annotations

import math

from google.protobuf.duration_pb2 import Duration
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec


def _full_v1() -> pb.CreateTrainingRequest:
    spec = lora_spec(team="ml", **{"example.com/tier": "gold"})
    p = spec.parameters
    p.per_device_eval_batch_size = 4
    p.gradient_accumulation_steps = 2
    p.weight_decay = 0.01
    p.warmup_ratio = 0.03
    p.lr_scheduler_type = "cosine"
    p.logging_steps = 10
    p.fsdp = "full_shard auto_wrap"
    p.fsdp_config = '{"fsdp_offload_params": false}'
    p.include_tokens_per_second = True
    p.packing = False
    p.response_template = "\n### Response:"
    p.dataset_text_field = "output"
    p.use_flash_attn = True
    p.torch_dtype = "bfloat16"
    p.model_max_length = 4096
    p.lora.lora_dropout = 0.05
    p.lora.bias = "none"
    spec.deadline.CopyFrom(Duration(seconds=3600))
    return pb.CreateTrainingRequest(spec=spec, request_id="seed-1")


def _prompt_tuning_v1() -> pb.CreateTrainingRequest:
    spec = lora_spec()
    spec.parameters.peft_method = pb.PEFT_METHOD_PROMPT_TUNING
    spec.parameters.prompt_tuning.CopyFrom(
        pb.PromptTuningParameters(
            prompt_tuning_init="TEXT",
            num_virtual_tokens=8,
            prompt_tuning_init_text="Classify the sentiment:",
            tokenizer_name_or_path="meta-llama/Llama-3.2-1B",
        )
    )
    return pb.CreateTrainingRequest(spec=spec)


def _hostile_v1() -> pb.CreateTrainingRequest:
    spec = lora_spec(**{"a/b/c": "x y"})
    spec.output_path = "/mnt/output/../../etc"
    spec.parameters.learning_rate = math.nan
    spec.parameters.data_path = "s3://models/%2e%2e/x"
    spec.parameters.peft_method = 99  # type: ignore[assignment]
    spec.resources.cpu = "four"
    return pb.CreateTrainingRequest(spec=spec, request_id="a/b")


def _full_legacy() -> legacy.TrainingRequest:
    return legacy.TrainingRequest(
        model_name="granite",
        output_path="/mnt/output/granite",
        parameters=legacy.TrainingParameters(
            model_name_or_path="ibm-granite/granite-3.0-2b-base",
            data_path="/mnt/data/train.jsonl",
            num_train_epochs=2,
            per_device_train_batch_size=4,
            per_device_eval_batch_size=4,
            gradient_accumulation_steps=1,
            learning_rate=1e-4,
            weight_decay=0.0,
            warmup_ratio=0.1,
            lr_scheduler_type="linear",
            logging_steps=1,
            fsdp="",
            fsdp_config="",
            include_tokens_per_second=False,
            packing=True,
            response_template="### Answer:",
            dataset_text_field="text",
            use_flash_attn=False,
            torch_dytpe="float16",
            model_max_length=2048,
            peft_method="lora",
            lora_parameters=legacy.LORAParameters(
                r=4, lora_alpha=8, target_modules=["q_proj"], bias=0.5, lora_dropout=0.1
            ),
        ),
    )


def _prompt_tuning_legacy() -> legacy.TrainingRequest:
    request = _full_legacy()
    request.parameters.peft_method = "pt"
    request.parameters.pt_parameters.CopyFrom(
        legacy.PTParameters(prompt_tuning_init="RANDOM", num_virtual_tokens=20)
    )
    return request


def seeds() -> dict[str, bytes]:
    return {
        "v1-lora": pb.CreateTrainingRequest(spec=lora_spec()).SerializeToString(),
        "v1-full": _full_v1().SerializeToString(),
        "v1-prompt-tuning": _prompt_tuning_v1().SerializeToString(),
        "v1-hostile": _hostile_v1().SerializeToString(),
        "legacy-full": _full_legacy().SerializeToString(),
        "legacy-prompt-tuning": _prompt_tuning_legacy().SerializeToString(),
        "legacy-minimal": legacy.TrainingRequest(model_name="m").SerializeToString(),
        "empty": b"",
    }
