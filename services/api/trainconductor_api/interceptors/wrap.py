"""Wraps the behaviour of a gRPC method handler, unary or server-streaming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc

from trainconductor_api.interceptors.outcome import status_code

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
State = TypeVar("State")


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


def around(
    handler: grpc.RpcMethodHandler[RequestT, ResponseT] | None,
    begin: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], State],
    end: Callable[
        [State, grpc.aio.ServicerContext[Any, Any], grpc.StatusCode, BaseException | None], None
    ],
    sent: Callable[[], None] | None = None,
) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
    """Returns `handler` with `begin` called before each call and `end` after
    it, with what `begin` returned, the status code the call ended with and
    what it raised, if anything; `sent` after each response."""

    def unary(behavior: UnaryBehavior) -> UnaryBehavior:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            state = begin(request, context)
            outcome = grpc.StatusCode.UNKNOWN
            error: BaseException | None = None
            try:
                response = await behavior(request, context)
                outcome = grpc.StatusCode.OK
                if sent is not None:
                    sent()
                return response
            except asyncio.CancelledError as err:
                # The client went away (or its deadline passed) and grpc
                # cancelled the handler: the client's doing, not a failure.
                outcome, error = grpc.StatusCode.CANCELLED, err
                raise
            except BaseException as err:
                error = err
                raise
            finally:
                end(state, context, status_code(context, outcome), error)
                error = None  # a cycle through the traceback's frame otherwise

        return call

    def stream(behavior: StreamBehavior) -> StreamBehavior:
        async def call(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            state = begin(request, context)
            outcome = grpc.StatusCode.UNKNOWN
            error: BaseException | None = None
            try:
                async for response in responses(behavior(request, context)):
                    if sent is not None:
                        sent()
                    yield response
                outcome = grpc.StatusCode.OK
            except (asyncio.CancelledError, GeneratorExit) as err:
                # GeneratorExit: grpc stopped taking the messages, which it
                # does when the client cancelled or went away while one was
                # being sent, and the loop closes the stream later.
                outcome, error = grpc.StatusCode.CANCELLED, err
                raise
            except BaseException as err:
                error = err
                raise
            finally:
                end(state, context, status_code(context, outcome), error)
                error = None  # a cycle through the traceback's frame otherwise

        return call

    return wrap(handler, unary, stream)


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
