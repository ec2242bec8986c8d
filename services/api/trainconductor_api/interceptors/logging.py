"""One JSON log line per call: method, status code, duration, caller, training id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from trainconductor_api.identity import identity_var
from trainconductor_api.interceptors.metrics import CANCELED, OK, UNKNOWN, code_name
from trainconductor_api.interceptors.wrap import (
    StreamBehavior,
    UnaryBehavior,
    WrappingInterceptor,
    responses,
    wrap,
)
from trainconductor_core.logs import training_id_var

log = logging.getLogger("trainconductor_api.access")


# Which field of each request message names a training, if any: found once
# per message type, since asking a message for a field it lacks raises inside.
_ID_FIELD: dict[type, str | None] = {}


def _training_id(request: Any) -> str:
    kind = type(request)
    if kind not in _ID_FIELD:
        fields = getattr(getattr(kind, "DESCRIPTOR", None), "fields_by_name", {})
        _ID_FIELD[kind] = next((f for f in ("id", "training_id") if f in fields), None)
    field = _ID_FIELD[kind]
    value = getattr(request, field) if field else ""
    return value[:64] if isinstance(value, str) else ""


class LoggingInterceptor(WrappingInterceptor):
    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:

        def line(
            context: grpc.aio.ServicerContext[Any, Any], peer: str, start: float, outcome: str
        ) -> None:
            code = code_name(context, outcome)
            log.log(
                logging.INFO if code in ("OK", "Canceled", "NotFound") else logging.WARNING,
                "rpc",
                extra={
                    "grpc_method": method,
                    "grpc_code": code,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "peer": peer,
                    # Who, as authenticated (set by the auth interceptor
                    # within this call); never the credentials themselves.
                    "user": identity_var.get().user,
                },
            )

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                start = time.perf_counter()
                # Read now: peer() on a call the client already cancelled
                # crashes grpcio's aio server (a use after free).
                peer = context.peer()
                training_id_var.set(_training_id(request))
                outcome = UNKNOWN
                try:
                    response = await behavior(request, context)
                    outcome = OK
                    return response
                except asyncio.CancelledError:
                    outcome = CANCELED
                    raise
                finally:
                    line(context, peer, start, outcome)

            return call

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def call(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                start = time.perf_counter()
                # Read now: peer() on a call the client already cancelled
                # crashes grpcio's aio server (a use after free).
                peer = context.peer()
                training_id_var.set(_training_id(request))
                outcome = UNKNOWN
                try:
                    async for response in responses(behavior(request, context)):
                        yield response
                    outcome = OK
                except asyncio.CancelledError:
                    outcome = CANCELED
                    raise
                finally:
                    line(context, peer, start, outcome)

            return call

        return wrap(handler, unary, stream)
