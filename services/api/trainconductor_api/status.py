"""Errors at the gRPC edge: every failure becomes a status a person can act on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from trainconductor_api.unknown_fields import unknown_field_violations
from trainconductor_api.validation import Violation
from trainconductor_core.ids import is_training_id

# Clients refuse trailers past 8 KiB (gRPC's default soft limit: past it a
# call fails at random, past 16 KiB always, as RESOURCE_EXHAUSTED "Stream
# removed" with none of the details). The field violations (sent base64) and
# the message (sent percent-encoded) are cut to fit well within it.
_MAX_DETAILS_BYTES = 3000
_MAX_MESSAGE_BYTES = 512


async def abort_invalid(
    context: grpc.aio.ServicerContext[Any, Any], violations: Sequence[Violation]
) -> NoReturn:
    """Aborts with INVALID_ARGUMENT and a `google.rpc.BadRequest` naming each
    field, or as many as fit in the trailers."""
    bad_request = error_details_pb2.BadRequest()
    for v in violations:
        bad_request.field_violations.add(field=v.field, description=v.description)
        if bad_request.ByteSize() > _MAX_DETAILS_BYTES and len(bad_request.field_violations) > 1:
            del bad_request.field_violations[-1]
            break
    details = any_pb2.Any()
    details.Pack(bad_request)
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
    more = f"; and {len(violations) - 5} more" if len(violations) > 5 else ""
    summary = _cut(f"invalid request: {summary}", _MAX_MESSAGE_BYTES - len(more)) + more
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=summary, details=[details])
    await context.abort_with_status(rpc_status.to_status(status))


def _cut(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, on a character boundary."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - 3].decode(errors="ignore") + "..."


async def abort_rate_limited(
    context: grpc.aio.ServicerContext[Any, Any], message: str, retry_after_seconds: float
) -> NoReturn:
    """Aborts with RESOURCE_EXHAUSTED and a `google.rpc.RetryInfo` saying when
    to try again, which gRPC clients and retry policies understand."""
    retry_info = error_details_pb2.RetryInfo()
    retry_info.retry_delay.FromMilliseconds(max(1, math.ceil(retry_after_seconds * 1000)))
    details = any_pb2.Any()
    details.Pack(retry_info)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[details])
    await context.abort_with_status(rpc_status.to_status(status))


async def abort_quota_exceeded(
    context: grpc.aio.ServicerContext[Any, Any], subject: str, description: str
) -> NoReturn:
    """Aborts with RESOURCE_EXHAUSTED and a `google.rpc.QuotaFailure`: waiting
    alone does not help, something must finish first."""
    details = any_pb2.Any()
    details.Pack(
        error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(subject=subject, description=description)
            ]
        )
    )
    status = status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, message=description, details=[details]
    )
    await context.abort_with_status(rpc_status.to_status(status))


async def refuse_unknown_fields(
    context: grpc.aio.ServicerContext[Any, Any], request: Message
) -> None:
    """INVALID_ARGUMENT naming every field of `request` (or of a message in
    it) this server does not know."""
    if violations := unknown_field_violations(request):
        await abort_invalid(context, violations)


async def check_training_id(
    context: grpc.aio.ServicerContext[Any, Any], training_id: str, field: str
) -> None:
    """INVALID_ARGUMENT when the id is missing; NOT_FOUND when it can not be
    one: well-formed or not, no training has it, the answer a user expects."""
    if not training_id:
        await abort_invalid(context, [Violation(field, "is required")])
    if not is_training_id(training_id):
        await context.abort(grpc.StatusCode.NOT_FOUND, f"training {training_id[:64]!r} not found")
