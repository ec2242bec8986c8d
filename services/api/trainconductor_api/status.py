"""Errors at the gRPC edge: every failure becomes a status a person can act on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from trainconductor_api.validation import Violation


async def abort_invalid(
    context: grpc.aio.ServicerContext[Any, Any], violations: Sequence[Violation]
) -> None:
    """Aborts with INVALID_ARGUMENT and a `google.rpc.BadRequest` naming each field."""
    details = any_pb2.Any()
    details.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in violations
            ]
        )
    )
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
    if len(violations) > 5:
        summary += f"; and {len(violations) - 5} more"
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=f"invalid request: {summary}", details=[details]
    )
    await context.abort_with_status(rpc_status.to_status(status))


async def abort_rate_limited(
    context: grpc.aio.ServicerContext[Any, Any], message: str, retry_after_seconds: float
) -> None:
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
) -> None:
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
