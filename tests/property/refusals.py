"""What a refusal must look like: a status a person can act on, never
INTERNAL or UNKNOWN, and the fields it names."""

from __future__ import annotations

import grpc
from google.protobuf.message import Message

from tests.support.grpc_errors import violated_fields
from trainconductor_api.settings import ApiSettings

# A larger request is refused by gRPC itself before the API reads it.
MAX_MESSAGE_BYTES: int = ApiSettings.model_fields["max_message_bytes"].default


def refused_fields(error: grpc.aio.AioRpcError, request: Message) -> list[str]:
    """The fields an INVALID_ARGUMENT names; [] for a request over the size
    limit. Fails the test for any other refusal."""
    code, details = error.code(), (error.details() or "")[:300]
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Nothing but the size of the message may exhaust anything here (no
        # rate limit, no cap): a small request refused so is a broken error.
        assert request.ByteSize() > MAX_MESSAGE_BYTES, (
            f"RESOURCE_EXHAUSTED for a request of {request.ByteSize()} bytes: {details}"
        )
        return []
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{code.name}: {details}"
    fields = violated_fields(error)
    assert fields, f"INVALID_ARGUMENT naming no field: {details}"
    return fields
