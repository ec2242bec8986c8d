"""Maps failures to status codes; no traceback ever reaches a client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from trainconductor_api import metrics
from trainconductor_api.interceptors.wrap import (
    StreamBehavior,
    UnaryBehavior,
    WrappingInterceptor,
    responses,
    wrap,
)
from trainconductor_api.status import abort_quota_exceeded
from trainconductor_core.errors import (
    ActiveTrainingsCapReached,
    HistoryTrimmed,
    InvalidCursor,
    RequestIdOfRemovedTraining,
    StoreFull,
    StoreUnavailable,
    TrainingFinished,
    TrainingNotFound,
)

log = logging.getLogger(__name__)


async def _abort_for(context: grpc.aio.ServicerContext[Any, Any], err: Exception) -> None:
    if isinstance(err, TrainingNotFound):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(err))
    if isinstance(err, StoreUnavailable):
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, "the training store is unavailable; retry shortly"
        )
    if isinstance(err, StoreFull):
        metrics.LIMITED.labels("redis_full").inc()
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{err}; reads, watches and cancels still work; retry later",
        )
    if isinstance(err, RequestIdOfRemovedTraining):
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(err))
    if isinstance(err, TrainingFinished):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
    if isinstance(err, InvalidCursor):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
    if isinstance(err, HistoryTrimmed):
        await context.abort(grpc.StatusCode.OUT_OF_RANGE, str(err))
    if isinstance(err, ActiveTrainingsCapReached):
        metrics.LIMITED.labels("active").inc()
        await abort_quota_exceeded(context, f"owner:{err.owner}", str(err))
    log.exception("unexpected error", exc_info=err)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the server logged the details")


def _unary(behavior: UnaryBehavior) -> UnaryBehavior:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as err:  # noqa: BLE001 - the edge: everything becomes a status
            await _abort_for(context, err)

    return call


def _stream(behavior: StreamBehavior) -> StreamBehavior:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for response in responses(behavior(request, context)):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as err:  # noqa: BLE001 - the edge: everything becomes a status
            await _abort_for(context, err)

    return call


class ErrorInterceptor(WrappingInterceptor):
    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        return wrap(handler, _unary, _stream)
