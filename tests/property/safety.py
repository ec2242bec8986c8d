"""What an accepted spec can never hold, written apart from the API's own
validation (docs/security.md, "Input that cannot hurt"): a second opinion,
so that a rule the validation forgets shows up as an accepted request that
breaks one of these."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from trainconductor.v1 import training_service_pb2 as pb

from tests.property.values import ALLOWED_PATH_PREFIXES

MAX_TEXT = 4096
MAX_LABELS = 32
MAX_TARGET_MODULES = 64
MAX_GPUS = 8
# The API's defaults for the operator's limits.
MAX_NODES = 64
MAX_RETRIES = 10
MAX_DEADLINE_SECONDS = 30 * 24 * 3600

# Kubernetes' own syntax (k8s.io/apimachinery/pkg/util/validation).
LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,252}")

FLOATS = ("num_train_epochs", "learning_rate", "weight_decay", "warmup_ratio", "logging_steps")
TEXTS = (
    "lr_scheduler_type",
    "fsdp",
    "fsdp_config",
    "response_template",
    "dataset_text_field",
    "torch_dtype",
)


def unsafe_values(spec: pb.TrainingSpec) -> list[str]:
    """Each value of `spec` that must have been refused, and why."""
    return list(_unsafe(spec))


def _unsafe(spec: pb.TrainingSpec) -> Iterator[str]:
    if not MODEL_NAME.fullmatch(spec.model_name) or ".." in spec.model_name.split("/"):
        yield f"model_name {spec.model_name[:80]!r} is not a name"
    yield from _unsafe_path("output_path", spec.output_path)
    if not spec.HasField("parameters"):
        yield "parameters are missing"
        return
    p = spec.parameters
    if not p.base_model or len(p.base_model) > MAX_TEXT:
        yield f"base_model is empty or longer than {MAX_TEXT}"
    yield from _unsafe_path("parameters.data_path", p.data_path)
    for name in FLOATS:
        if p.HasField(name) and not math.isfinite(getattr(p, name)):  # type: ignore[arg-type]
            yield f"parameters.{name} is {getattr(p, name)}"
    for name in TEXTS:
        if len(getattr(p, name)) > MAX_TEXT:
            yield f"parameters.{name} is longer than {MAX_TEXT}"
    if p.peft_method not in pb.PeftMethod.values():
        yield f"peft_method {p.peft_method} is no known method"
    if p.HasField("lora"):
        if p.lora.HasField("lora_dropout") and not math.isfinite(p.lora.lora_dropout):
            yield f"lora.lora_dropout is {p.lora.lora_dropout}"
        if len(p.lora.target_modules) > MAX_TARGET_MODULES:
            yield f"lora lists {len(p.lora.target_modules)} target modules"
        if any(len(m) > MAX_TEXT or not m.isascii() for m in p.lora.target_modules):
            yield "a LoRA target module is not a module name"
    for name in ("prompt_tuning_init_text", "tokenizer_name_or_path"):
        if len(getattr(p.prompt_tuning, name)) > MAX_TEXT:
            yield f"prompt_tuning.{name} is longer than {MAX_TEXT}"
    if not 0 <= spec.resources.gpus <= MAX_GPUS:
        yield f"resources.gpus is {spec.resources.gpus}"
    if not 0 <= spec.resources.nodes <= MAX_NODES:
        yield f"resources.nodes is {spec.resources.nodes}"
    if spec.HasField("max_retries") and not 0 <= spec.max_retries <= MAX_RETRIES:
        yield f"max_retries is {spec.max_retries}"
    for name in ("cpu", "memory"):
        value = getattr(spec.resources, name)
        if value and not QUANTITY.fullmatch(value):
            yield f"resources.{name} {value[:80]!r} is not a quantity"
    if spec.HasField("deadline"):
        seconds = spec.deadline.seconds + spec.deadline.nanos / 1e9
        if not 0 < seconds <= MAX_DEADLINE_SECONDS:
            yield f"deadline is {seconds}s"
    yield from _unsafe_labels(dict(spec.labels))
    # The API under test runs without queues.
    for name in ("queue", "priority"):
        if getattr(spec, name):
            yield f"{name} {getattr(spec, name)[:80]!r} given to an installation without queues"


def _unsafe_path(field: str, path: str) -> Iterator[str]:
    segments = path.replace("\\", "/").split("/")
    if ".." in segments or "%2e" in path.lower():
        yield f"{field} {path[:80]!r} climbs out of its directory"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        yield f"{field} {path[:80]!r} holds a control character"
    if len(path) > MAX_TEXT:
        yield f"{field} is longer than {MAX_TEXT}"
    if not any(path.startswith(prefix) for prefix in ALLOWED_PATH_PREFIXES):
        yield f"{field} {path[:80]!r} is outside the allowed prefixes"


def _unsafe_labels(labels: dict[str, str]) -> Iterator[str]:
    if len(labels) > MAX_LABELS:
        yield f"{len(labels)} labels"
    for key, value in labels.items():
        prefix, slash, name = key.rpartition("/")
        if slash and not (len(prefix) <= 253 and DNS_SUBDOMAIN.fullmatch(prefix)):
            yield f"label key {key[:80]!r} has a prefix that is not a DNS subdomain"
        if not LABEL_NAME.fullmatch(name):
            yield f"label key {key[:80]!r} has a name that is not a label name"
        if value and not LABEL_NAME.fullmatch(value):
            yield f"label value {value[:80]!r} is not a label value"
