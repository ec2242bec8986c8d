"""Errors at the gRPC edge: every failure becomes a status a person can act on."""

from __future__ import annotations

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
