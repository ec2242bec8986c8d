"""What can go wrong, as exceptions carrying the gRPC code and, for bad
input, the fields that were wrong."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class TrainConductorError(Exception):
    """A call failed. `code` is the gRPC status code."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = violations


class NotFound(TrainConductorError):
    pass


class InvalidArgument(TrainConductorError):
    pass


class Unavailable(TrainConductorError):
    """The API or its store is down; retrying later may work."""


class Unauthenticated(TrainConductorError):
    pass


class PermissionDenied(TrainConductorError):
    pass


class ResourceExhausted(TrainConductorError):
    pass


class DeadlineExceeded(TrainConductorError):
    pass


class FailedPrecondition(TrainConductorError):
    """The call does not apply to the training as it is (a hold of a
    training in no queue)."""


class HistoryTrimmed(TrainConductorError):
    """A watch was resumed from an event older than the server still keeps:
    read the training again and watch from its current state."""


_BY_CODE: dict[grpc.StatusCode, type[TrainConductorError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.OUT_OF_RANGE: HistoryTrimmed,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
}


def from_rpc_error(error: grpc.RpcError) -> TrainConductorError:
    code: grpc.StatusCode = error.code()
    message: str = error.details() or code.name
    violations: list[FieldViolation] = []
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        status = None
    for detail in status.details if status else []:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations += [
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            ]
    return _BY_CODE.get(code, TrainConductorError)(code, message, tuple(violations))
