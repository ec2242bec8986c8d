"""Fields of a request that this server does not know. Pure.

proto3 keeps what it cannot name as unknown fields instead of failing the
parse; a service that then acts on the rest would run a training without a
setting its client sent. The services refuse such requests, naming each
unknown field by its path and number.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
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
    return [Violation(field, _DESCRIPTION) for field in _unknown_paths(message, path)]


def _unknown_paths(message: Message, path: str) -> Iterator[str]:
    # UnknownFieldSet is the accessor the upb backend supports; it lists each
    # occurrence, and a number repeated on the wire is named once.
    unknown = UnknownFieldSet(message)
    numbers = dict.fromkeys(unknown[i].field_number for i in range(len(unknown)))
    for number in numbers:
        yield f"{path}{number}"
    for descriptor, value in message.ListFields():
        if descriptor.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        name = f"{path}{descriptor.name}"
        if descriptor.message_type is None or descriptor.message_type.GetOptions().map_entry:
            continue  # the maps of these requests hold strings, not messages
        if descriptor.is_repeated:
            for i, item in enumerate(value):
                yield from _unknown_paths(item, f"{name}[{i}].")
        else:
            yield from _unknown_paths(value, f"{name}.")
