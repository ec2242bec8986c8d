"""Clients of the original Train Conductor's two revisions of its contract,
made at test time from the field tables (DESIGN.md for the older one, the
original's latest file for the other), not from this project's proto.

Each revision is compiled with grpcio-tools' protoc into a descriptor set in
a temporary directory and loaded into a descriptor pool of its own: both
revisions define the same message names as this project's legacy proto,
which the default pool already holds.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_tools import protoc  # type: ignore[import-untyped]

PACKAGE = "train_conductor.service.training"
SERVICE = "TrainConductor"

# Field tables: number, type, name; `opt` is proto3 `optional`.
COMMON = {
    "TrainingRequest": "1 string model_name; 2 string output_path; 3 TrainingParameters parameters",
    "TrainingJob": "1 string training_id; 2 string model_name",
    "TrainingInfoRequest": "1 string training_id",
    "TrainingStatusResponse": (
        "1 string training_id; 2 TrainingStatus state; "
        "3 google.protobuf.Timestamp submission_timestamp; "
        "4 google.protobuf.Timestamp completion_timestamp; 5 repeated string reasons"
    ),
}
STATUSES = (
    "PLACEHOLDER_UNSET 0; PENDING 1; QUEUED 2; RUNNING 3; SUSPENDED 4; COMPLETED 5; "
    "CANCELED 6; FAILED 7; DELETED 8"
)
_PARAMETERS_1_TO_24 = (
    "4 opt float num_train_epochs; 5 opt int32 per_device_train_batch_size; "
    "6 opt int32 per_device_eval_batch_size; 7 opt int32 gradient_accumulation_steps; "
    "10 opt float learning_rate; 11 opt float weight_decay; 12 opt float warmup_ratio; "
    "13 opt string lr_scheduler_type; 14 opt float logging_steps; 15 opt string fsdp; "
    "16 opt string fsdp_config; 17 opt bool include_tokens_per_second; 18 opt bool packing; "
    "19 opt string response_template; 20 opt string dataset_text_field; "
    "21 opt bool use_flash_attn"
)
OLDER = {
    "TrainingParameters": (
        f"1 string model_name_or_path; 2 string data_path; {_PARAMETERS_1_TO_24}; "
        "22 opt string torch_dytpe; 23 opt int32 model_max_length; 24 opt string peft_method; "
        "oneof peft_method_parameters { 50 LORAParameters lora_parameters; "
        "60 PTParameters pt_parameters }"
    ),
    "LORAParameters": (
        "1 opt int32 r; 2 opt int32 lora_alpha; 3 repeated string target_modules; "
        "4 opt float bias; 5 opt float lora_dropout"
    ),
    "PTParameters": (
        "1 opt string prompt_tuning_init; 2 opt int32 num_virtual_tokens; "
        "3 opt string prompt_tuning_init_text; 4 opt string tokenizer_name_or_path"
    ),
}
LATEST = {
    "TrainingParameters": (
        "1 string model_name_or_path; 2 string data_path; 3 opt string save_strategy; "
        f"{_PARAMETERS_1_TO_24}; 22 opt string torch_dtype; 23 opt int32 model_max_length; "
        "24 opt string peft_method; 25 opt int32 r; 26 opt int32 lora_alpha; "
        "27 repeated string target_modules; 28 opt string bias; 29 opt float lora_dropout; "
        "30 opt string prompt_tuning_init; 31 opt int32 num_virtual_tokens; "
        "32 opt string prompt_tuning_init_text; 33 opt string tokenizer_name_or_path; "
        "34 opt bool overwrite_output_dir; 35 opt int32 num_gpus; "
        "36 opt string evaluation_strategy; 37 opt string validation_data_path"
    ),
}


def newer_than_latest(table: str) -> dict[str, str]:
    """The latest revision with fields added: what a client of a revision
    this server does not know sends."""
    return {"TrainingParameters": f"{LATEST['TrainingParameters']}; {table}"}


def proto_text(messages: Mapping[str, str]) -> str:
    """A .proto file of the legacy service, its enum, COMMON and `messages`."""
    lines = [
        'syntax = "proto3";',
        f"package {PACKAGE};",
        'import "google/protobuf/timestamp.proto";',
        f"service {SERVICE} {{",
        "  rpc Train(TrainingRequest) returns (TrainingJob);",
        "  rpc GetTrainingStatus(TrainingInfoRequest) returns (TrainingStatusResponse);",
        "  rpc CancelTraining(TrainingInfoRequest) returns (TrainingStatusResponse);",
        "}",
        "enum TrainingStatus {",
        *(f"  {name} = {number};" for name, number in _entries(STATUSES)),
        "}",
    ]
    for name, table in {**COMMON, **messages}.items():
        lines += [f"message {name} {{", *_fields(table), "}"]
    return "\n".join(lines) + "\n"


def _entries(table: str) -> list[list[str]]:
    return [entry.split() for entry in table.split(";") if entry.strip()]


def _fields(table: str) -> list[str]:
    head, brace, oneof = table.partition("oneof ")
    lines = [_field(words) for words in _entries(head)]
    if brace:
        name, _, body = oneof.partition("{")
        inner = [_field(words) for words in _entries(body.rstrip("} "))]
        lines += [f"  oneof {name.strip()} {{", *(f"  {line}" for line in inner), "  }"]
    return lines


def _field(words: list[str]) -> str:
    number, *kind, name = words
    if kind[0] == "opt":
        kind[0] = "optional"
    return f"  {' '.join(kind)} {name} = {number};"


@dataclass(frozen=True)
class Revision:
    """A legacy client built from one revision's .proto."""

    pool: descriptor_pool.DescriptorPool

    def message_class(self, name: str) -> type[Message]:
        descriptor = self.pool.FindMessageTypeByName(f"{PACKAGE}.{name}")
        cls: type[Message] = message_factory.GetMessageClass(descriptor)
        return cls

    def message(self, name: str, fields: Mapping[str, Any]) -> Message:
        """`fields` by their proto names, nested messages as mappings."""
        return json_format.ParseDict(dict(fields), self.message_class(name)())

    def parameter_names(self) -> set[str]:
        """Every field of TrainingParameters, and of its nested messages as
        `block.field`."""
        names: set[str] = set()
        for field in self.pool.FindMessageTypeByName(f"{PACKAGE}.TrainingParameters").fields:
            if field.message_type is None:
                names.add(field.name)
            else:
                names.update(f"{field.name}.{inner.name}" for inner in field.message_type.fields)
        return names

    def method(self, channel: Any, name: str) -> Callable[..., Any]:
        """The revision's method `name` on `channel` (a sync or an aio one)."""
        method = self.pool.FindServiceByName(f"{PACKAGE}.{SERVICE}").methods_by_name[name]
        response = self.message_class(method.output_type.name)
        call: Callable[..., Any] = channel.unary_unary(
            f"/{PACKAGE}.{SERVICE}/{name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        return call


def compile_revision(messages: Mapping[str, str], directory: Path) -> Revision:
    """The revision of `messages` compiled by protoc in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "training.proto").write_text(proto_text(messages))
    descriptors = directory / "training.protoset"
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    status = protoc.main(
        [
            "protoc",
            f"-I{directory}",
            f"-I{well_known}",
            "--include_imports",
            f"--descriptor_set_out={descriptors}",
            str(directory / "training.proto"),
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed on {directory / 'training.proto'} ({status})")
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptors.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return Revision(pool)


# Trainings that, between them, set every field of a revision's
# TrainingParameters to a valid value (floats exact in float32, as the wire
# carries them). `packing` is sent false: a field sent is a field passed on.
SHARED_VALUES: dict[str, Any] = {
    "model_name_or_path": "ibm-granite/granite-3.0-2b-base",
    "data_path": "/mnt/data/train.jsonl",
    "num_train_epochs": 2.5,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 2,
    "gradient_accumulation_steps": 8,
    "learning_rate": 2**-10,
    "weight_decay": 0.0625,
    "warmup_ratio": 0.125,
    "lr_scheduler_type": "cosine",
    "logging_steps": 10.0,
    "fsdp": "full_shard auto_wrap",
    "fsdp_config": '{"fsdp_sharding_strategy": "FULL_SHARD"}',
    "include_tokens_per_second": True,
    "packing": False,
    "response_template": "\n### Response:",
    "dataset_text_field": "output",
    "use_flash_attn": True,
    "model_max_length": 2048,
}
_LORA_VALUES: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 32,
    "target_modules": ["q_proj", "v_proj"],
    "lora_dropout": 0.125,
}
_PROMPT_TUNING_VALUES: dict[str, Any] = {
    "prompt_tuning_init": "TEXT",
    "num_virtual_tokens": 8,
    "prompt_tuning_init_text": "Classify the sentiment:",
    "tokenizer_name_or_path": "ibm-granite/granite-3.0-2b-base",
}
_LATEST_ADDED: dict[str, Any] = {
    "save_strategy": "epoch",
    "overwrite_output_dir": True,
    "evaluation_strategy": "steps",
    "validation_data_path": "/mnt/data/eval.jsonl",
}

# Where a legacy field's value goes in the trainer's configuration (by
# fms-hf-tuning's names) when not under its own name; GPUS: the Job's GPU limit.
GPUS = "the Job's GPU limit"
BECOMES = {
    "data_path": "training_data_path",
    "torch_dytpe": "torch_dtype",
    "num_gpus": GPUS,
    **{f"lora_parameters.{name}": name for name in (*_LORA_VALUES, "bias")},
    **{f"pt_parameters.{name}": name for name in _PROMPT_TUNING_VALUES},
}
# Values the trainer takes in another form: the older revision's number for
# a LoRA bias is PEFT's name for it.
VALUE_BECOMES = {"lora_parameters.bias": {0.0: "none"}}


@dataclass(frozen=True)
class LegacyTraining:
    name: str
    revision: str  # "older" or "latest"
    parameters: dict[str, Any]

    def request(self, revision: Revision) -> Message:
        return revision.message(
            "TrainingRequest",
            {"model_name": self.name, "output_path": OUTPUT_PATH, "parameters": self.parameters},
        )

    def fields(self) -> dict[str, Any]:
        """Every field it sets, nested ones as `block.field`."""
        flat: dict[str, Any] = {}
        for name, value in self.parameters.items():
            if isinstance(value, dict):
                flat.update({f"{name}.{inner}": v for inner, v in value.items()})
            else:
                flat[name] = value
        return flat

    def expected(self) -> tuple[dict[str, Any], int]:
        """The trainer's configuration and the GPUs this training must get."""
        config: dict[str, Any] = {"output_dir": OUTPUT_PATH}
        gpus = 0
        for field, value in self.fields().items():
            target = BECOMES.get(field, field)
            if target == GPUS:
                gpus = value
            else:
                config[target] = (
                    VALUE_BECOMES[field].get(value, value) if field in VALUE_BECOMES else value
                )
        return config, gpus


OUTPUT_PATH = "/mnt/output/granite"
TRAININGS = (
    LegacyTraining(
        "older-lora",
        "older",
        {
            **SHARED_VALUES,
            "torch_dytpe": "bfloat16",
            "peft_method": "lora",
            "lora_parameters": {**_LORA_VALUES, "bias": 0.0},
        },
    ),
    LegacyTraining(
        "older-pt",
        "older",
        {
            **SHARED_VALUES,
            "torch_dytpe": "float16",
            "peft_method": "pt",
            "pt_parameters": _PROMPT_TUNING_VALUES,
        },
    ),
    LegacyTraining(
        "latest-lora",
        "latest",
        {
            **SHARED_VALUES,
            "torch_dtype": "bfloat16",
            "peft_method": "lora",
            **_LORA_VALUES,
            "bias": "lora_only",
            **_LATEST_ADDED,
            "num_gpus": 2,
        },
    ),
    LegacyTraining(
        "latest-pt",
        "latest",
        {
            **SHARED_VALUES,
            "torch_dtype": "float16",
            "peft_method": "pt",
            **_PROMPT_TUNING_VALUES,
            **_LATEST_ADDED,
            "num_gpus": 1,
        },
    ),
)
REVISIONS = {"older": OLDER, "latest": LATEST}
