"""The span of a Redis command a traced call sends through the store's own
pipeline, named and described as OpenTelemetry's Redis instrumentation
describes the commands it sees, so that a trace shows it as any other
Redis span. tests/integration/store/test_redis_spans.py holds the two side
by side and fails when a new version of the instrumentation describes its
spans otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from trainconductor_core import __version__

_STATEMENT_MAX = 1000  # the instrumentation's: longer ones end in "..."


def _statement(args: Sequence[Any]) -> str:
    """The command with its arguments hidden: "EVALSHA ? ? ?"."""
    statement = " ".join([str(args[0]), *(["?"] * (len(args) - 1))])
    if len(statement) > _STATEMENT_MAX:
        return statement[: _STATEMENT_MAX - 3] + "..."
    return statement


def _connection_attributes(client: redis.Redis) -> dict[str, str | int]:
    kwargs = client.connection_pool.connection_kwargs
    attributes: dict[str, str | int] = {
        "db.system": "redis",
        "db.redis.database_index": kwargs.get("db") or 0,
    }
    if "path" in kwargs:
        attributes.update({"net.peer.name": kwargs["path"], "net.transport": "other"})
    else:
        attributes.update(
            {
                "net.peer.name": kwargs.get("host", "localhost"),
                "net.peer.port": kwargs.get("port", 6379),
                "net.transport": "ip_tcp",
            }
        )
    return attributes


class RedisSpans:
    def __init__(
        self, client: redis.Redis, tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self._tracer = trace.get_tracer("trainconductor.store", __version__, tracer_provider)
        self._connection = _connection_attributes(client)

    def start(self, args: Sequence[Any]) -> trace.Span:
        """A client span of the command, a child of the current span."""
        attributes = {
            "db.statement": _statement(args),
            "db.redis.args_length": len(args),
            **self._connection,
        }
        return self._tracer.start_span(
            str(args[0]), kind=trace.SpanKind.CLIENT, attributes=attributes
        )

    @staticmethod
    def failed(span: trace.Span, error: Exception) -> None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
