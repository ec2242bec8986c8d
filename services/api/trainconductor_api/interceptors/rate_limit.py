"""Limits how fast one identity may create trainings (a token bucket each).

Runs inside the auth interceptor, so the bucket is the authenticated
caller's. Per replica: with N replicas behind a balancer an identity gets
up to N times the rate; the cap on active trainings (in the store) is the
limit that holds across replicas.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc

from trainconductor_api import metrics
from trainconductor_api.identity import current_identity
from trainconductor_api.interceptors.wrap import (
    StreamBehavior,
    UnaryBehavior,
    WrappingInterceptor,
    wrap,
)
from trainconductor_api.status import abort_rate_limited
from trainconductor_api.token_bucket import TokenBuckets

_RATE_LIMITED = metrics.LIMITED.labels("rate")


class RateLimitInterceptor(WrappingInterceptor):
    def __init__(self, buckets: TokenBuckets, methods: Iterable[str]) -> None:
        super().__init__()
        self._buckets = buckets
        self._methods = frozenset(methods)

    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if method not in self._methods:
            return handler

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                wait = self._buckets.take(current_identity().user)
                if wait > 0:
                    _RATE_LIMITED.inc()
                    await abort_rate_limited(
                        context,
                        f"too many trainings created; retry in {wait:.1f}s",
                        wait,
                    )
                return await behavior(request, context)

            return call

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            return behavior  # no streaming method creates anything

        return wrap(handler, unary, stream)
