"""Wraps the behaviour of a gRPC method handler, unary or server-streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


@dataclass(frozen=True)
class MethodName:
    service: str
    method: str
    kind: str  # the grpc_type label: unary or server_stream

    @classmethod
    def parse(cls, full_method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> MethodName:
        service, _, method = full_method.lstrip("/").rpartition("/")
        return cls(service, method, "server_stream" if handler.response_streaming else "unary")


def wrap(
    handler: grpc.RpcMethodHandler[RequestT, ResponseT] | None,
    unary: Callable[[UnaryBehavior], UnaryBehavior],
    stream: Callable[[StreamBehavior], StreamBehavior],
) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
    """Returns `handler` with its unary-unary or unary-stream behaviour wrapped."""
    if handler is None:
        return None
    # Under grpc.aio the behaviours are coroutine functions and async
    # generators; the stubs describe the synchronous server's.
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(cast(UnaryBehavior, handler.unary_unary)),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(cast(StreamBehavior, handler.unary_stream)),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # client streaming: none of our methods


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor that wraps each method's handler once and reuses it:
    building handlers on every call costs more than the call itself."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any] | None] = {}

    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[RequestT, ResponseT] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
        method = handler_call_details.method
        if method in self._handlers:
            return self._handlers[method]
        handler = await continuation(handler_call_details)
        # Handlers are per method and never change, so one wrap serves all calls.
        wrapped = None if handler is None else self.wrap_handler(method, handler)
        self._handlers[method] = wrapped
        return wrapped


async def responses(result: Any) -> AsyncIterator[Any]:
    """The responses of a server-streaming behaviour, whichever way it gives
    them: an async generator yields them; a coroutine (grpc_health's Watch,
    say) writes them with `context.write` and returns nothing."""
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        await result
