"""Training specs from YAML or JSON files, as people write them."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
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
    prepared = _fields(_normalize(dict(data)), pb.TrainingSpec.DESCRIPTOR, "spec")
    try:
        return json_format.ParseDict(prepared, pb.TrainingSpec())
    except json_format.ParseError as err:
        raise SpecError(FieldViolation(source, str(err))) from err


def _fields(data: dict[str, Any], message: Descriptor, path: str) -> dict[str, Any]:
    """`data` with the names of `message` checked and its values in the
    forms protobuf's JSON parser takes."""
    prepared: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key)
        field = message.fields_by_name.get(name) or _by_json_name(message, name)
        if field is None:
            known = sorted(message.fields_by_name)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f" (its fields: {', '.join(known)})"
            raise SpecError(
                FieldViolation(f"{path}.{name}", f"is not a field of {message.name}{hint}")
            )
        prepared[name] = _value(field, value, f"{path}.{name}")
    return prepared


def _by_json_name(message: Descriptor, name: str) -> FieldDescriptor | None:
    return next((f for f in message.fields if f.json_name == name), None)


def _value(field: FieldDescriptor, value: Any, path: str) -> Any:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, dict):
            raise SpecError(FieldViolation(path, "must be a mapping"))
        target = entry.fields_by_name["value"]
        return {
            _scalar(entry.fields_by_name["key"], k, f"{path}[{k!r}]"): _value(
                target, v, f"{path}[{k!r}]"
            )
            for k, v in value.items()
        }
    if field.is_repeated and isinstance(value, list):
        return [_single(field, item, f"{path}[{i}]") for i, item in enumerate(value)]
    return _single(field, value, path)


def _single(field: FieldDescriptor, value: Any, path: str) -> Any:
    message = field.message_type
    if message is None:
        return _scalar(field, value, path)
    if message.full_name == "google.protobuf.Duration" and _is_int(value):
        return f"{value}s"  # seconds, as the --deadline flag takes them
    if isinstance(value, dict):
        return _fields(value, message, path)
    return value  # protobuf's parser names what is wrong with it


def _scalar(field: FieldDescriptor, value: Any, path: str) -> Any:
    """A whole number YAML read unquoted is the text a string field wants
    (`cpu: 4`, `priority: 1`); a float or a boolean is refused, since its
    text is not what was written (`1.10` reads as 1.1, `yes` as True)."""
    if field.type != FieldDescriptor.TYPE_STRING or isinstance(value, str):
        return value
    if _is_int(value):
        return str(value)
    if isinstance(value, bool | float):
        raise SpecError(
            FieldViolation(
                path, f"must be text: quote it (YAML read {value!r}, a {type(value).__name__})"
            )
        )
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_spec(path: Path) -> pb.TrainingSpec:
    """A spec from a file; `-` reads standard input."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as err:
        raise SpecError(FieldViolation(str(path), f"cannot be read: {err.strerror}")) from err
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as err:
        raise SpecError(FieldViolation(str(path), f"is not valid YAML or JSON: {err}")) from err
    return spec_from_dict(data, str(path))
