"""The API's server spans, through a real grpc.aio server: one sampling
decision per call; a recorded call gets the instrumentation's span and
attributes; a call left out keeps its trace context, with instrumentation
suppressed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from trainconductor_api.interceptors.tracing import TracingInterceptor

SERVICE = "tests.Traced"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@dataclass
class Seen:
    """What each handler saw while it ran."""

    trace_ids: list[int] = field(default_factory=list)
    instrumented: list[bool] = field(default_factory=list)

    def look(self) -> None:
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        self.instrumented.append(is_instrumentation_enabled())


def handlers(seen: Seen) -> grpc.GenericRpcHandler:
    async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        seen.look()
        return request

    async def down(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        seen.look()
        await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        raise AssertionError("abort returns no more")

    async def count(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        seen.look()
        for i in range(3):
            yield bytes([i])

    async def written(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        # A stream that writes its messages and returns nothing, as
        # grpc_health's Watch does.
        seen.look()
        await context.write(b"a")
        await context.write(b"b")

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Down": grpc.unary_unary_rpc_method_handler(down),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Written": grpc.unary_stream_rpc_method_handler(written),
        },
    )


@dataclass
class Traced:
    channel: grpc.aio.Channel
    spans: InMemorySpanExporter
    seen: Seen

    def method(self, name: str) -> Callable[..., Any]:
        return self.channel.unary_unary(f"/{SERVICE}/{name}")

    def count(self) -> Callable[..., Any]:
        return self.channel.unary_stream(f"/{SERVICE}/Count")

    def written(self) -> Callable[..., Any]:
        return self.channel.unary_stream(f"/{SERVICE}/Written")

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()


@pytest.fixture
def sampler() -> Sampler:
    return ParentBased(ALWAYS_ON)


@pytest.fixture
async def traced(sampler: Sampler) -> AsyncIterator[Traced]:
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    seen = Seen()
    server = grpc.aio.server(interceptors=[TracingInterceptor(provider)])
    server.add_generic_rpc_handlers((handlers(seen),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Traced(channel, spans, seen)
    await server.stop(None)


def traceparent(sampled: bool) -> tuple[tuple[str, str]]:
    return (("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-{'01' if sampled else '00'}"),)


async def test_a_recorded_call_has_the_instrumentations_server_span(traced: Traced) -> None:
    assert await traced.method("Echo")(b"hi", metadata=traceparent(sampled=True)) == b"hi"

    (span,) = traced.finished()
    assert span.name == f"/{SERVICE}/Echo"
    assert span.kind == trace.SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    attributes = dict(span.attributes or {})
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == SERVICE
    assert attributes["rpc.method"] == "Echo"
    assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert attributes["net.peer.ip"] == "127.0.0.1"  # the instrumentation's own
    assert traced.seen.instrumented == [True]
    assert traced.seen.trace_ids == [span.context.trace_id]


async def test_a_recorded_call_that_fails_carries_its_status(traced: Traced) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await traced.method("Down")(b"", metadata=traceparent(sampled=True))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE

    (span,) = traced.finished()
    assert (
        dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    )
    # A server's error by the semantic conventions (NOT_FOUND, say, is not).
    assert span.status.status_code == trace.StatusCode.ERROR


async def test_a_recorded_stream_has_one_span_around_its_messages(traced: Traced) -> None:
    stream = traced.count()
    messages = [m async for m in stream(b"", metadata=traceparent(sampled=True))]
    assert messages == [b"\x00", b"\x01", b"\x02"]
    (span,) = traced.finished()
    assert span.name == f"/{SERVICE}/Count"
    assert traced.seen.instrumented == [True]


@pytest.mark.parametrize("sampler", [ALWAYS_ON, ALWAYS_OFF])
async def test_a_stream_that_writes_its_messages_is_served_recorded_or_not(
    traced: Traced,
) -> None:
    messages = [m async for m in traced.written()(b"")]
    assert messages == [b"a", b"b"]
    assert len(traced.finished()) == traced.seen.instrumented.count(True)


@pytest.mark.parametrize("sampler", [ParentBased(ALWAYS_OFF)])
async def test_a_call_left_out_keeps_its_callers_trace_with_instrumentation_suppressed(
    traced: Traced,
) -> None:
    await traced.method("Echo")(b"", metadata=traceparent(sampled=False))
    await traced.method("Echo")(b"")  # a root: the sampler says no
    stream = traced.count()
    assert len([m async for m in stream(b"")]) == 3

    assert traced.finished() == ()
    # The caller's trace goes on (to the stored training, the controller,
    # the log lines), but nothing below records spans nobody keeps.
    assert format(traced.seen.trace_ids[0], "032x") == TRACE_ID
    assert all(trace_id != 0 for trace_id in traced.seen.trace_ids)
    assert traced.seen.instrumented == [False, False, False]


@pytest.mark.parametrize("sampler", [ParentBased(ALWAYS_OFF)])
async def test_a_sampled_caller_is_recorded_whatever_the_root_sampler(traced: Traced) -> None:
    await traced.method("Echo")(b"", metadata=traceparent(sampled=True))
    assert len(traced.finished()) == 1
    assert traced.seen.instrumented == [True]


@pytest.mark.parametrize("sampler", [ParentBased(TraceIdRatioBased(0.5))])
async def test_the_sampler_is_asked_once_per_call(traced: Traced) -> None:
    """Asked twice, a ratio of one half would record one call in four."""
    calls = 400
    for _ in range(calls):
        await traced.method("Echo")(b"")
    recorded = len(traced.finished())
    # Binomial(400, 0.5): 200 ± 10; 150 and 250 are five deviations away.
    assert 150 < recorded < 250, recorded
    assert traced.seen.instrumented.count(True) == recorded
