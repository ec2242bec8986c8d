"""Counts and times every call under the `grpc_server_*` names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import Counter

from trainconductor_api import metrics
from trainconductor_api.interceptors.wrap import (
    MethodName,
    StreamBehavior,
    UnaryBehavior,
    WrappingInterceptor,
    responses,
    wrap,
)


def _label(code: grpc.StatusCode) -> str:
    """The code as Go's codes.Code spells it ("InvalidArgument"): the value of
    the grpc_code label that go-grpc-prometheus dashboards and alerts use."""
    if code == grpc.StatusCode.CANCELLED:
        return "Canceled"
    if code == grpc.StatusCode.OK:
        return "OK"
    return "".join(part.title() for part in code.name.split("_"))


_BY_CODE = {c: _label(c) for c in grpc.StatusCode}
_BY_NUMBER = {c.value[0]: _label(c) for c in grpc.StatusCode}


# What a call came to when the handler set no status code itself.
UNKNOWN, OK = "Unknown", "OK"
# The client went away (or its deadline passed) and grpc cancelled the
# handler: the client's doing, not a failure of the server.
CANCELED = "Canceled"


def code_name(context: grpc.aio.ServicerContext[Any, Any], outcome: str) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return _BY_CODE[code]
    if isinstance(code, int):  # some grpcio versions keep the raw number
        return _BY_NUMBER.get(code, UNKNOWN)
    return outcome


class MetricsInterceptor(WrappingInterceptor):
    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler is None:
            return handler
        name = MethodName.parse(method, handler)
        labels = (name.kind, name.service, name.method)
        started = metrics.GRPC_STARTED.labels(*labels)
        received = metrics.GRPC_MSG_RECEIVED.labels(*labels)
        sent = metrics.GRPC_MSG_SENT.labels(*labels)
        seconds = metrics.GRPC_HANDLING_SECONDS.labels(*labels)
        handled: dict[str, Counter] = {}  # by code, resolved on first use

        def done(context: grpc.aio.ServicerContext[Any, Any], start: float, outcome: str) -> None:
            seconds.observe(time.perf_counter() - start)
            code = code_name(context, outcome)
            counter = handled.get(code)
            if counter is None:
                counter = handled[code] = metrics.GRPC_HANDLED.labels(*labels, code)
            counter.inc()

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                start = time.perf_counter()
                started.inc()
                received.inc()
                outcome = UNKNOWN
                try:
                    response = await behavior(request, context)
                    outcome = OK
                    sent.inc()
                    return response
                except asyncio.CancelledError:
                    outcome = CANCELED
                    raise
                finally:
                    done(context, start, outcome)

            return call

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def call(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                start = time.perf_counter()
                started.inc()
                received.inc()
                outcome = UNKNOWN
                try:
                    async for response in responses(behavior(request, context)):
                        sent.inc()
                        yield response
                    outcome = OK
                except asyncio.CancelledError:
                    outcome = CANCELED
                    raise
                finally:
                    done(context, start, outcome)

            return call

        return wrap(handler, unary, stream)
