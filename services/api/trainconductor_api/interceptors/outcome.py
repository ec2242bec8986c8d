"""The status code a call ended with, as the interceptors that report on
calls (metrics, the access log, tracing) read it once the handler is done."""

from __future__ import annotations

from typing import Any

import grpc

_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def status_code(
    context: grpc.aio.ServicerContext[Any, Any], outcome: grpc.StatusCode
) -> grpc.StatusCode:
    """The code the handler set (an abort sets one), else `outcome`: what the
    call came to without one (OK when it returned, CANCELLED when grpc
    cancelled it, UNKNOWN when it raised)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # some grpcio versions keep the raw number
        return _BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    return outcome


def _go_name(code: grpc.StatusCode) -> str:
    if code == grpc.StatusCode.CANCELLED:
        return "Canceled"
    if code == grpc.StatusCode.OK:
        return "OK"
    return "".join(part.title() for part in code.name.split("_"))


# The code as Go's codes.Code spells it ("InvalidArgument"): the value of the
# grpc_code label that go-grpc-prometheus dashboards and alerts use, and of
# the access log's grpc_code.
GO_NAMES = {code: _go_name(code) for code in grpc.StatusCode}
