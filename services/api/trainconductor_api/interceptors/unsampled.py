"""Calls whose trace is not recorded skip the per-command tracing work."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation

from trainconductor_api.interceptors.wrap import (
    StreamBehavior,
    UnaryBehavior,
    WrappingInterceptor,
    responses,
    wrap,
)


def _instrumentation_scope() -> contextlib.AbstractContextManager[None]:
    """Instrumentation as usual under a recorded span, suppressed otherwise."""
    if trace.get_current_span().is_recording():
        return contextlib.nullcontext()
    return suppress_instrumentation()


class UnsampledCallInterceptor(WrappingInterceptor):
    """Sits right inside OpenTelemetry's server interceptor. When the call's
    span is not recorded (the sampler left this trace out), the call runs with
    instrumentation suppressed: the Redis instrumentation then returns at once
    instead of formatting each command for a span that would be dropped anyway,
    being the child of an unrecorded one. At the chart's default of one trace
    in ten, this was most of tracing's cost (make bench)."""

    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                with _instrumentation_scope():
                    return await behavior(request, context)

            return call

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def call(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                with _instrumentation_scope():
                    async for response in responses(behavior(request, context)):
                        yield response

            return call

        return wrap(handler, unary, stream)
