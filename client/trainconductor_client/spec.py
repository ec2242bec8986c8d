"""Training specs from YAML or JSON files, as people write them."""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_client.errors import FieldViolation


class SpecError(ValueError):
    """A spec file that is not a valid TrainingSpec; names every field that
    is wrong, so that one run tells the whole of it."""

    def __init__(self, *violations: FieldViolation) -> None:
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations

    @property
    def violation(self) -> FieldViolation:
        """The first of them."""
        return self.violations[0]


def spec_from_dict(data: Any, source: str = "spec") -> pb.TrainingSpec:
    if not isinstance(data, dict):
        raise SpecError(FieldViolation(source, "must be a mapping of TrainingSpec fields"))
    problems: list[FieldViolation] = []
    prepared = _fields(data, pb.TrainingSpec.DESCRIPTOR, "spec", problems)
    if problems:
        raise SpecError(*problems)
    try:
        return json_format.ParseDict(prepared, pb.TrainingSpec())
    except json_format.ParseError as err:
        raise SpecError(FieldViolation(source, str(err))) from err


# The functions below add what is wrong to `problems` and go on with the rest
# of the file, so that a person fixes every field in one go rather than
# learning of them one run at a time.


def _fields(
    data: dict[str, Any], message: Descriptor, path: str, problems: list[FieldViolation]
) -> dict[str, Any]:
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
            problems.append(
                FieldViolation(f"{path}.{name}", f"is not a field of {message.name}{hint}")
            )
            continue
        prepared[name] = _value(field, value, f"{path}.{name}", problems)
    return prepared


def _by_json_name(message: Descriptor, name: str) -> FieldDescriptor | None:
    return next((f for f in message.fields if f.json_name == name), None)


def _value(field: FieldDescriptor, value: Any, path: str, problems: list[FieldViolation]) -> Any:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, dict):
            problems.append(FieldViolation(path, "must be a mapping"))
            return value
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return {
            _single(key_field, k, f"{path}[{k!r}]", problems): _single(
                value_field, v, f"{path}[{k!r}]", problems
            )
            for k, v in value.items()
        }
    if field.is_repeated:
        if not isinstance(value, list):
            problems.append(FieldViolation(path, f"must be a list{_read(value)}"))
            return value
        return [_single(field, item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    return _single(field, value, path, problems)


def _single(field: FieldDescriptor, value: Any, path: str, problems: list[FieldViolation]) -> Any:
    message = field.message_type
    if message is not None and message.full_name == _DURATION:
        if _is_int(value):
            return f"{value}s"  # seconds, as the --deadline flag takes them
    elif message is not None and isinstance(value, dict):
        return _fields(value, message, path, problems)
    if field.enum_type is not None and isinstance(value, str):
        prepared = _enum_name(field.enum_type, value)
    else:
        prepared = _scalar(field, value, path, problems)
    if prepared is not _REFUSED and not _parses(field, prepared):
        problems.append(FieldViolation(path, f"{_expected(field)}{_read(value)}"))
    return prepared


_DURATION = "google.protobuf.Duration"
# Said in place of a value already named in `problems`.
_REFUSED = object()


def _scalar(field: FieldDescriptor, value: Any, path: str, problems: list[FieldViolation]) -> Any:
    """A whole number YAML read unquoted is the text a string field wants
    (`cpu: 4`, `priority: 1`); a float or a boolean is refused, since its
    text is not what was written (`1.10` reads as 1.1, `yes` as True)."""
    if field.type != FieldDescriptor.TYPE_STRING or isinstance(value, str):
        return value
    if _is_int(value):
        return str(value)
    if isinstance(value, bool | float):
        problems.append(FieldViolation(path, f"must be text: quote it{_read(value)}"))
        return _REFUSED
    return value


def _parses(field: FieldDescriptor, value: Any) -> bool:
    """Whether this one value is one protobuf's JSON parser takes for the
    field: each is tried on its own, so that one bad value hides no other."""
    container = field.containing_type
    if container is None:  # an extension: a spec has none; the whole parse judges it
        return True
    if value is None:
        # Leaves a field unset; a list item or a map value cannot be unset.
        return not (field.is_repeated or container.GetOptions().map_entry)
    if isinstance(value, bool) and field.cpp_type != FieldDescriptor.CPPTYPE_BOOL:
        return False  # protobuf takes `yes` as 1.0 for a number
    holder = message_factory.GetMessageClass(container)()
    try:
        json_format.ParseDict({field.name: [value] if field.is_repeated else value}, holder)
    except json_format.ParseError:
        return False
    return True


# Other spellings of enum values, by enum, written without its prefix.
_ENUM_ALIASES = {"trainconductor.v1.PeftMethod": {"PT": "PROMPT_TUNING"}}


def _enum_name(enum: EnumDescriptor, value: str) -> str:
    """Accepts `lora` and `prompt-tuning` as well as `PEFT_METHOD_LORA`."""
    name = value.upper().replace("-", "_")
    name = _ENUM_ALIASES.get(enum.full_name, {}).get(name, name)
    prefix = _enum_prefix(enum)
    return name if name.startswith(prefix) else prefix + name


def _enum_prefix(enum: EnumDescriptor) -> str:
    """PEFT_METHOD_ for PeftMethod: the style guide's prefix of its values."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def _expected(field: FieldDescriptor) -> str:
    message, enum = field.message_type, field.enum_type
    if message is not None and message.full_name == _DURATION:
        return 'must be a number of seconds (7200) or a duration such as "7200s"'
    if message is not None:
        return f"must be a mapping of {message.name} fields"
    if enum is not None:
        prefix = _enum_prefix(enum)
        names = [v.name.removeprefix(prefix).lower() for v in enum.values if v.number != 0]
        return f"must be one of {', '.join(names)}"
    return _EXPECTED_BY_TYPE.get(field.cpp_type, "has a value of the wrong kind")


_EXPECTED_BY_TYPE = {
    FieldDescriptor.CPPTYPE_INT32: "must be a whole number",
    FieldDescriptor.CPPTYPE_INT64: "must be a whole number",
    FieldDescriptor.CPPTYPE_UINT32: "must be a whole number, 0 or more",
    FieldDescriptor.CPPTYPE_UINT64: "must be a whole number, 0 or more",
    FieldDescriptor.CPPTYPE_FLOAT: "must be a number",
    FieldDescriptor.CPPTYPE_DOUBLE: "must be a number",
    FieldDescriptor.CPPTYPE_BOOL: "must be true or false",
    FieldDescriptor.CPPTYPE_STRING: "must be text",
}


def _read(value: Any) -> str:
    return f" (YAML read {value!r}, a {type(value).__name__})"


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
