"""Wraps the behaviour of a gRPC method handler, unary or server-streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


@dataclass(frozen=True)
class MethodName:
    service: str
    method: str
    kind: str  # the grpc_type label: unary or server_stream

    @classmethod
    def parse(cls, full_method: str, handler: grpc.RpcMethodHandler) -> MethodName:
        service, _, method = full_method.lstrip("/").rpartition("/")
        return cls(service, method, "server_stream" if handler.response_streaming else "unary")


def wrap(
    handler: grpc.RpcMethodHandler | None,
    unary: Callable[[UnaryBehavior], UnaryBehavior],
    stream: Callable[[StreamBehavior], StreamBehavior],
) -> grpc.RpcMethodHandler | None:
    """Returns `handler` with its unary-unary or unary-stream behaviour wrapped."""
    if handler is None:
        return None
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # client streaming: none of our methods
