"""Fields of a request that this server does not know. Pure.

proto3 keeps what it cannot name as unknown fields instead of failing the
parse; a service that then acts on the rest would run a training without a
setting its client sent. The services refuse such requests, naming each
unknown field by its path and number.
"""

from __future__ import annotations

from functools import cache

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from trainconductor_api.validation import Violation

_DESCRIPTION = (
    "is a field number this server does not know: the client was built from another "
    "revision of the API; refused rather than run without it"
)


def unknown_field_violations(message: Message, path: str = "") -> list[Violation]:
    """One violation per unknown field number in `message` or any message in
    it, named by the path of the message that holds it and its number
    (`parameters.38`)."""
    paths: list[str] = []
    _collect_unknown(message, path, paths)
    return [Violation(field, _DESCRIPTION) for field in paths]


def _collect_unknown(message: Message, path: str, paths: list[str]) -> None:
    # UnknownFieldSet is the accessor the upb backend supports; it lists each
    # occurrence, and a number repeated on the wire is named once.
    unknown = UnknownFieldSet(message)
    if len(unknown):
        numbers = dict.fromkeys(unknown[i].field_number for i in range(len(unknown)))
        paths.extend(f"{path}{number}" for number in numbers)
    for name, repeated in _message_fields(message.DESCRIPTOR):
        if repeated:
            for i, item in enumerate(getattr(message, name)):
                _collect_unknown(item, f"{path}{name}[{i}].", paths)
        elif message.HasField(name):
            _collect_unknown(getattr(message, name), f"{path}{name}.", paths)


@cache
def _message_fields(descriptor: Descriptor) -> tuple[tuple[str, bool], ...]:
    """The fields of `descriptor` that hold messages, by number: the walk
    asks only these, since reading every set field (ListFields) makes a
    Python object of each string, once per call."""
    return tuple(
        (field.name, field.is_repeated)
        for field in sorted(descriptor.fields, key=lambda f: f.number)
        if field.message_type is not None
        # The maps of these requests hold strings, not messages.
        and not field.message_type.GetOptions().map_entry
    )
