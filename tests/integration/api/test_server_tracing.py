"""The API's server spans, through a real grpc.aio server: named and described
as OpenTelemetry's semantic conventions describe a gRPC server span, so that
Jaeger and other back ends show them as any other; one sampling decision per
call; the caller's trace read through the global propagator; a call left out
keeps its trace context, with instrumentation suppressed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.util.types import Attributes

from trainconductor_api.interceptors.errors import ErrorInterceptor
from trainconductor_api.interceptors.tracing import SCHEMA_URL, TracingInterceptor

SERVICE = "tests.v1.Traced"
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

    async def abort(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """Ends with the status code whose number is the request's one byte."""
        seen.look()
        (code,) = (c for c in grpc.StatusCode if c.value[0] == request[0])
        await context.abort(code, "as asked")
        raise AssertionError("abort returns no more")

    async def broken(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        seen.look()
        raise RuntimeError("the disk is on fire")

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
            "Abort": grpc.unary_unary_rpc_method_handler(abort),
            "Broken": grpc.unary_unary_rpc_method_handler(broken),
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

    def stream(self, name: str) -> Callable[..., Any]:
        return self.channel.unary_stream(f"/{SERVICE}/{name}")

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    async def ended(self, within: float = 10) -> tuple[ReadableSpan, ...]:
        """The spans finished, once there is one: an aborted call's status
        reaches the client before its handler, and the span, has ended."""
        deadline = asyncio.get_running_loop().time() + within
        while not (spans := self.finished()):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no span ended within {within}s")
            await asyncio.sleep(0.01)
        return spans


@pytest.fixture
def sampler() -> Sampler:
    return ParentBased(ALWAYS_ON)


@pytest.fixture
def inner() -> list[grpc.aio.ServerInterceptor]:
    """Interceptors inside the tracing one."""
    return []


@pytest.fixture
async def traced(
    sampler: Sampler, inner: list[grpc.aio.ServerInterceptor]
) -> AsyncIterator[Traced]:
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    seen = Seen()
    server = grpc.aio.server(interceptors=[TracingInterceptor(provider), *inner])
    server.add_generic_rpc_handlers((handlers(seen),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Traced(channel, spans, seen)
    await server.stop(None)


def traceparent(sampled: bool) -> tuple[tuple[str, str]]:
    return (("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-{'01' if sampled else '00'}"),)


async def test_a_recorded_call_has_the_conventions_server_span(traced: Traced) -> None:
    assert await traced.method("Echo")(b"hi", metadata=traceparent(sampled=True)) == b"hi"

    (span,) = await traced.ended()
    # $package.$service/$method, as every gRPC instrumentation names it.
    assert span.name == f"{SERVICE}/Echo"
    assert span.kind == SpanKind.SERVER
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == SCHEMA_URL
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    attributes = dict(span.attributes or {})
    port = attributes.pop("network.peer.port")
    assert isinstance(port, int)
    assert 0 < port < 65536
    assert attributes == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Echo",
        "rpc.grpc.status_code": 0,
        "network.peer.address": "127.0.0.1",
        "network.transport": "tcp",
        "network.type": "ipv4",
    }
    assert span.status.status_code == trace.StatusCode.UNSET
    assert span.events == ()
    assert traced.seen.instrumented == [True]
    assert traced.seen.trace_ids == [span.context.trace_id]


# The conventions' table for server spans: only the codes that say the server
# failed make the span an error; the others are the caller's doing.
STATUS_OF_SERVER_SPAN = [
    pytest.param(grpc.StatusCode.CANCELLED, trace.StatusCode.UNSET, id="cancelled is unset"),
    pytest.param(grpc.StatusCode.UNKNOWN, trace.StatusCode.ERROR, id="unknown is an error"),
    pytest.param(
        grpc.StatusCode.INVALID_ARGUMENT, trace.StatusCode.UNSET, id="invalid argument is unset"
    ),
    pytest.param(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        trace.StatusCode.ERROR,
        id="deadline exceeded is an error",
    ),
    pytest.param(grpc.StatusCode.NOT_FOUND, trace.StatusCode.UNSET, id="not found is unset"),
    pytest.param(
        grpc.StatusCode.ALREADY_EXISTS, trace.StatusCode.UNSET, id="already exists is unset"
    ),
    pytest.param(
        grpc.StatusCode.PERMISSION_DENIED, trace.StatusCode.UNSET, id="permission denied is unset"
    ),
    pytest.param(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        trace.StatusCode.UNSET,
        id="resource exhausted is unset",
    ),
    pytest.param(
        grpc.StatusCode.FAILED_PRECONDITION,
        trace.StatusCode.UNSET,
        id="failed precondition is unset",
    ),
    pytest.param(grpc.StatusCode.ABORTED, trace.StatusCode.UNSET, id="aborted is unset"),
    pytest.param(grpc.StatusCode.OUT_OF_RANGE, trace.StatusCode.UNSET, id="out of range is unset"),
    pytest.param(
        grpc.StatusCode.UNIMPLEMENTED, trace.StatusCode.ERROR, id="unimplemented is an error"
    ),
    pytest.param(grpc.StatusCode.INTERNAL, trace.StatusCode.ERROR, id="internal is an error"),
    pytest.param(grpc.StatusCode.UNAVAILABLE, trace.StatusCode.ERROR, id="unavailable is an error"),
    pytest.param(grpc.StatusCode.DATA_LOSS, trace.StatusCode.ERROR, id="data loss is an error"),
    pytest.param(
        grpc.StatusCode.UNAUTHENTICATED, trace.StatusCode.UNSET, id="unauthenticated is unset"
    ),
]


def test_the_table_covers_every_code_but_ok() -> None:
    covered = {param.values[0] for param in STATUS_OF_SERVER_SPAN}
    assert covered == set(grpc.StatusCode) - {grpc.StatusCode.OK}


@pytest.mark.parametrize(("code", "status"), STATUS_OF_SERVER_SPAN)
async def test_a_recorded_call_that_ends_with_a_code_carries_it_and_its_status(
    traced: Traced, code: grpc.StatusCode, status: trace.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await traced.method("Abort")(bytes([code.value[0]]))
    assert failure.value.code() == code

    (span,) = await traced.ended()
    attributes = dict(span.attributes or {})
    assert attributes["rpc.grpc.status_code"] == code.value[0]
    assert span.status.status_code == status
    if status == trace.StatusCode.ERROR:
        assert span.status.description == f"{code.name}: as asked"
        assert attributes["error.type"] == code.name
    else:
        assert "error.type" not in attributes
    # An abort is how a handler gives its status, not a failure of its own.
    assert span.events == ()


async def test_a_handler_that_raises_leaves_its_exception_on_the_span(traced: Traced) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await traced.method("Broken")(b"")
    assert failure.value.code() == grpc.StatusCode.UNKNOWN

    (span,) = await traced.ended()
    assert span.status.status_code == trace.StatusCode.ERROR
    (event,) = span.events
    assert event.name == "exception"
    event_attributes = dict(event.attributes or {})
    assert event_attributes["exception.type"] == "RuntimeError"
    assert event_attributes["exception.message"] == "the disk is on fire"


@pytest.mark.parametrize("inner", [[ErrorInterceptor()]])
async def test_a_failure_made_internal_keeps_its_exception_on_the_span(traced: Traced) -> None:
    """The error interceptor answers INTERNAL and keeps the traceback from the
    client; the span still shows which exception it was."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await traced.method("Broken")(b"")
    assert failure.value.code() == grpc.StatusCode.INTERNAL
    assert "fire" not in (failure.value.details() or "")

    (span,) = await traced.ended()
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert span.status.status_code == trace.StatusCode.ERROR
    (event,) = span.events
    assert dict(event.attributes or {})["exception.type"] == "RuntimeError"


async def test_a_recorded_stream_has_one_span_around_its_messages(traced: Traced) -> None:
    messages = [m async for m in traced.stream("Count")(b"", metadata=traceparent(sampled=True))]
    assert messages == [b"\x00", b"\x01", b"\x02"]
    (span,) = await traced.ended()
    assert span.name == f"{SERVICE}/Count"
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == 0
    assert traced.seen.instrumented == [True]


@pytest.mark.parametrize("sampler", [ALWAYS_ON, ALWAYS_OFF])
async def test_a_stream_that_writes_its_messages_is_served_recorded_or_not(
    traced: Traced,
) -> None:
    messages = [m async for m in traced.stream("Written")(b"")]
    assert messages == [b"a", b"b"]
    assert len(traced.finished()) == traced.seen.instrumented.count(True)


@pytest.mark.parametrize("sampler", [ParentBased(ALWAYS_OFF)])
async def test_a_call_left_out_keeps_its_callers_trace_with_instrumentation_suppressed(
    traced: Traced,
) -> None:
    await traced.method("Echo")(b"", metadata=traceparent(sampled=False))
    await traced.method("Echo")(b"")  # a root: the sampler says no
    assert len([m async for m in traced.stream("Count")(b"")]) == 3

    assert traced.finished() == ()
    # The caller's trace goes on (to the stored training, the controller,
    # the log lines), but nothing below records spans nobody keeps.
    assert format(traced.seen.trace_ids[0], "032x") == TRACE_ID
    assert all(trace_id != 0 for trace_id in traced.seen.trace_ids)
    assert traced.seen.instrumented == [False, False, False], (
        "suppress_instrumentation() no longer leaves its mark in the context it "
        "returns from get_current(); the tracing interceptor's quiet context "
        "(_quiet) needs another way to suppress instrumentation"
    )


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


class RecordingSampler(Sampler):
    """Records every call's span name, kind and attributes as the sampler sees them."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, SpanKind | None, dict[str, Any]]] = []

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Any = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        self.asked.append((name, kind, dict(attributes or {})))
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "RecordingSampler"


SEEN_BY_SAMPLER = RecordingSampler()


@pytest.mark.parametrize("sampler", [SEEN_BY_SAMPLER])
async def test_the_sampler_sees_the_method_and_not_the_peer(traced: Traced) -> None:
    SEEN_BY_SAMPLER.asked.clear()
    await traced.method("Echo")(b"")
    assert SEEN_BY_SAMPLER.asked == [
        (
            f"{SERVICE}/Echo",
            SpanKind.SERVER,
            {"rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": "Echo"},
        )
    ]


class HeaderPropagator(TextMapPropagator):
    """A propagator of another kind than W3C's: the trace and span ids in a
    header of their own, as B3 or a vendor's would."""

    FIELD = "x-test-trace"

    def extract(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> otel_context.Context:
        values = getter.get(carrier, self.FIELD)
        if not values:
            return context or otel_context.Context()
        trace_id, span_id = values[0].split(":")
        parent = SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1)
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(parent), context)

    def inject(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span = trace.get_current_span(context).get_span_context()
        setter.set(carrier, self.FIELD, f"{span.trace_id:032x}:{span.span_id:016x}")

    @property
    def fields(self) -> set[str]:
        return {self.FIELD}


@pytest.fixture
def header_propagator() -> Iterator[None]:
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(HeaderPropagator())
    yield
    propagate.set_global_textmap(before)


async def test_the_callers_trace_is_read_by_the_global_propagator(
    traced: Traced, header_propagator: None
) -> None:
    metadata: Mapping[str, str] = {HeaderPropagator.FIELD: f"{TRACE_ID}:{PARENT_SPAN_ID}"}
    await traced.method("Echo")(b"", metadata=tuple(metadata.items()))
    # W3C's header means nothing to this propagator.
    await traced.method("Echo")(b"", metadata=traceparent(sampled=True))

    continued, other = traced.finished()
    assert format(continued.context.trace_id, "032x") == TRACE_ID
    assert continued.parent is not None
    assert format(continued.parent.span_id, "016x") == PARENT_SPAN_ID
    assert other.parent is None
