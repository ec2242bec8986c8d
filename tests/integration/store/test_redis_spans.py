"""A traced call's Redis command goes with the others in the store's
pipeline, and its span is the one OpenTelemetry's Redis instrumentation
would have made: same name, kind, attributes, parent and error status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.exceptions import ResponseError

from devstack.redis_server import RedisServer
from trainconductor_core.auto_pipeline import AutoPipeline

CALLS = 50


@pytest.fixture
def exported() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    RedisInstrumentor().instrument(tracer_provider=provider)
    yield provider, exporter
    RedisInstrumentor().uninstrument()


@pytest.fixture
async def client(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[redis.Redis]:
    async with redis.Redis.from_url(redis_server.url, client_name=f"{key_prefix}spans") as client:
        yield client


@pytest.fixture
async def pipeline(
    exported: tuple[TracerProvider, InMemorySpanExporter], client: redis.Redis
) -> AsyncIterator[AutoPipeline]:
    pipeline = AutoPipeline(client, tracer_provider=exported[0])
    yield pipeline
    await pipeline.close()


def _described(span: ReadableSpan) -> tuple[object, ...]:
    return (span.name, span.kind, dict(span.attributes or {}))


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [span for span in spans if span.parent and span.parent.span_id == parent.context.span_id]


async def _side_by_side(
    exported: tuple[TracerProvider, InMemorySpanExporter],
    client: redis.Redis,
    pipeline: AutoPipeline,
    *command: object,
    fails: bool = False,
) -> tuple[ReadableSpan, ReadableSpan, object]:
    """The command run by redis-py, instrumented, then by the pipeline, each
    in a span of the test's: the instrumentation's span, the pipeline's, and
    the pipeline's reply."""
    provider, exporter = exported
    tracer = provider.get_tracer("tests")
    exporter.clear()

    def expected() -> contextlib.AbstractContextManager[object]:
        return pytest.raises(ResponseError) if fails else contextlib.nullcontext()

    with tracer.start_as_current_span("by redis-py"), expected():
        await client.execute_command(*command)  # type: ignore[no-untyped-call]
    reply: object = None
    with tracer.start_as_current_span("by the pipeline"), expected():
        reply = await pipeline.execute(*command)
    spans = exporter.get_finished_spans()
    by_name = {span.name: span for span in spans}
    [instrumented] = _children(spans, by_name["by redis-py"])
    [ours] = _children(spans, by_name["by the pipeline"])
    return instrumented, ours, reply


async def test_a_traced_command_has_the_span_the_instrumentation_would_give_it(
    exported: tuple[TracerProvider, InMemorySpanExporter],
    client: redis.Redis,
    pipeline: AutoPipeline,
    key_prefix: str,
) -> None:
    command = ("SET", f"{key_prefix}k", "v", "EX", 60)
    instrumented, ours, reply = await _side_by_side(exported, client, pipeline, *command)
    assert reply
    assert instrumented.kind == SpanKind.CLIENT
    assert _described(ours) == _described(instrumented)
    assert dict(ours.attributes or {})["db.statement"] == "SET ? ? ? ?"


async def test_a_failed_traced_command_has_the_instrumentations_error_status(
    exported: tuple[TracerProvider, InMemorySpanExporter],
    client: redis.Redis,
    pipeline: AutoPipeline,
    key_prefix: str,
) -> None:
    key = f"{key_prefix}text"
    await client.set(key, "not a number")
    instrumented, ours, _ = await _side_by_side(exported, client, pipeline, "INCR", key, fails=True)
    assert _described(ours) == _described(instrumented)
    assert (ours.status.status_code, ours.status.description) == (
        instrumented.status.status_code,
        instrumented.status.description,
    )
    assert [event.name for event in ours.events] == [event.name for event in instrumented.events]


async def test_traced_calls_share_the_pipeline_and_each_has_its_own_span(
    exported: tuple[TracerProvider, InMemorySpanExporter],
    pipeline: AutoPipeline,
    redis_server: RedisServer,
    key_prefix: str,
) -> None:
    provider, exporter = exported
    tracer = provider.get_tracer("tests")

    async def call(n: int) -> object:
        with tracer.start_as_current_span(f"call {n}"):
            return await pipeline.execute("INCR", f"{key_prefix}count")

    counts = await asyncio.gather(*(call(n) for n in range(CALLS)))
    async with redis.Redis.from_url(redis_server.url, decode_responses=True) as admin:
        named = [c for c in await admin.client_list() if c["name"] == f"{key_prefix}spans"]

    assert sorted(counts) == list(range(1, CALLS + 1))  # type: ignore[type-var]
    # Sent alone, each traced call would have taken a connection of its own.
    assert len(named) == 1
    spans = exporter.get_finished_spans()
    calls = [span for span in spans if span.name.startswith("call ")]
    assert all(len(_children(spans, parent)) == 1 for parent in calls)
    assert len([span for span in spans if span.name == "INCR"]) == CALLS
