"""One JSON log line per call: method, status code, duration, caller, training id."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from trainconductor_api.identity import identity_var
from trainconductor_api.interceptors.outcome import GO_NAMES
from trainconductor_api.interceptors.wrap import WrappingInterceptor, around
from trainconductor_core.logs import DirectLines, training_id_var

access = DirectLines("trainconductor_api.access")

# Calls that end so are the caller's doing, or no failure at all.
_QUIET = frozenset({grpc.StatusCode.OK, grpc.StatusCode.CANCELLED, grpc.StatusCode.NOT_FOUND})


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

        def begin(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> tuple[float, str]:
            start = time.perf_counter()
            training_id_var.set(_training_id(request))
            # Read now: peer() on a call the client already cancelled crashes
            # grpcio's aio server (a use after free).
            return start, context.peer()

        def end(
            state: tuple[float, str],
            context: grpc.aio.ServicerContext[Any, Any],
            code: grpc.StatusCode,
            error: BaseException | None,
        ) -> None:
            start, peer = state
            access.log(
                logging.INFO if code in _QUIET else logging.WARNING,
                "rpc",
                {
                    "grpc_method": method,
                    "grpc_code": GO_NAMES[code],
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "peer": peer,
                    # Who, as authenticated (set by the auth interceptor
                    # within this call); never the credentials themselves.
                    "user": identity_var.get().user,
                },
            )

        return around(handler, begin, end)
