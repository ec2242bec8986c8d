"""Counts and times every call under the `grpc_server_*` names."""

from __future__ import annotations

import time
from typing import Any

import grpc
from prometheus_client import Counter

from trainconductor_api import metrics
from trainconductor_api.interceptors.outcome import GO_NAMES
from trainconductor_api.interceptors.wrap import MethodName, WrappingInterceptor, around


class MetricsInterceptor(WrappingInterceptor):
    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        name = MethodName.parse(method, handler)
        labels = (name.kind, name.service, name.method)
        started = metrics.GRPC_STARTED.labels(*labels)
        received = metrics.GRPC_MSG_RECEIVED.labels(*labels)
        sent = metrics.GRPC_MSG_SENT.labels(*labels)
        seconds = metrics.GRPC_HANDLING_SECONDS.labels(*labels)
        handled: dict[grpc.StatusCode, Counter] = {}  # by code, resolved on first use

        def begin(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> float:
            started.inc()
            received.inc()
            return time.perf_counter()

        def end(
            start: float,
            context: grpc.aio.ServicerContext[Any, Any],
            code: grpc.StatusCode,
            error: BaseException | None,
        ) -> None:
            seconds.observe(time.perf_counter() - start)
            counter = handled.get(code)
            if counter is None:
                counter = handled[code] = metrics.GRPC_HANDLED.labels(*labels, GO_NAMES[code])
            counter.inc()

        return around(handler, begin, end, sent.inc)
