"""Training specs from YAML or JSON files, as people write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_client.errors import FieldViolation


class SpecError(ValueError):
    """A spec file that is not a valid TrainingSpec; names the field."""

    def __init__(self, violation: FieldViolation) -> None:
        super().__init__(f"{violation.field}: {violation.description}")
        self.violation = violation


def _normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Accepts `peft_method: lora` as well as `PEFT_METHOD_LORA`."""
    params = data.get("parameters")
    if isinstance(params, dict) and isinstance(params.get("peft_method"), str):
        method = params["peft_method"].upper().replace("-", "_")
        method = {"PT": "PROMPT_TUNING"}.get(method, method)
        if not method.startswith("PEFT_METHOD_"):
            method = "PEFT_METHOD_" + method
        params["peft_method"] = method
    return data


def spec_from_dict(data: Any, source: str = "spec") -> pb.TrainingSpec:
    if not isinstance(data, dict):
        raise SpecError(FieldViolation(source, "must be a mapping of TrainingSpec fields"))
    try:
        return json_format.ParseDict(_normalize(dict(data)), pb.TrainingSpec())
    except json_format.ParseError as err:
        raise SpecError(FieldViolation(source, str(err))) from err


def load_spec(path: Path) -> pb.TrainingSpec:
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(FieldViolation(str(path), f"cannot be read: {err.strerror}")) from err
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as err:
        raise SpecError(FieldViolation(str(path), f"is not valid YAML or JSON: {err}")) from err
    return spec_from_dict(data, str(path))
