"""Each call's server span, named and described as OpenTelemetry's semantic
conventions for gRPC describe a server span, so that back ends show it as any
other. The sampler decides when the span starts; only a span it records is
given the rest (the peer, the status, a failure's exception), and a call it
leaves out runs with instrumentation suppressed."""

from __future__ import annotations

import contextvars
from typing import Any
from urllib.parse import unquote

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Status, StatusCode

from trainconductor_api.interceptors.wrap import WrappingInterceptor, around
from trainconductor_core import __version__

# The conventions the spans follow: the last version before the rpc.*
# attributes were renamed (rpc.system.name, a fully qualified rpc.method,
# rpc.response.status_code), whose names back ends and the other gRPC
# instrumentations use. A collector's schema processor translates from here.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.38.0"

# The codes that make a server span an error; the others are the caller's
# doing (a bad argument, a missing training, a refusal).
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def peer_attributes(peer: str) -> dict[str, str | int]:
    """The network.* attributes of grpc's name for a peer: "ipv4:10.1.2.80:65123",
    "ipv6:%5B::1%5D:65123", "unix:/run/api.sock"; none for a name it does
    not know."""
    kind, _, address = peer.partition(":")
    address = unquote(address)
    if kind == "unix":
        return {"network.transport": "unix", "network.peer.address": address}
    if kind not in ("ipv4", "ipv6"):
        return {}
    host, _, port = address.rpartition(":")
    if not port.isdigit() or (kind == "ipv6" and not host.endswith("]")):
        host, port = address, ""
    attributes: dict[str, str | int] = {
        "network.transport": "tcp",
        "network.type": kind,
        "network.peer.address": host.removeprefix("[").removesuffix("]"),
    }
    if port:
        attributes["network.peer.port"] = int(port)
    return attributes


def _quiet() -> otel_context.Context:
    """A context holding what `suppress_instrumentation()` puts in one, and
    nothing else: a call left out starts from it, in one attach, instead of
    entering that context manager too."""

    def inside() -> otel_context.Context:
        with suppress_instrumentation():
            return otel_context.get_current()

    return contextvars.Context().run(inside)


_QUIET = _quiet()


def _unrecorded(span: trace.Span, parent: otel_context.Context | None) -> otel_context.Context:
    """The context of a call the sampler left out: its span, so that its trace
    context still reaches the controller and the log lines, with
    instrumentation suppressed, so that the Redis instrumentation returns at
    once instead of formatting each command for a span that would be dropped."""
    if parent is not None:
        for key, value in _QUIET.items():
            parent = otel_context.set_value(key, value, parent)
    return trace.set_span_in_context(span, parent if parent is not None else _QUIET)


def _failure(error: BaseException | None) -> Exception | None:
    """The exception a failed call ended with. A handler that aborts while
    handling one (the error interceptor turns an unexpected one into
    INTERNAL) raises grpc's AbortError in its stead."""
    if isinstance(error, grpc.aio.AbortError):
        error = error.__context__
    return error if isinstance(error, Exception) else None


def _finish(
    span: trace.Span,
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    error: BaseException | None,
) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in SERVER_ERRORS:
        details = context.details()
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details}" if details else None))
        span.set_attribute("error.type", code.name)
        failure = _failure(error)
        if failure is not None:
            span.record_exception(failure)
    span.end()


class TracingInterceptor(WrappingInterceptor):
    """Starts the server span of every call, continuing the caller's trace
    as the global propagator reads it from the call's metadata. The sampler
    is asked once, with the span's name, kind and rpc.* attributes (not the
    peer's, which only a recorded span carries)."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__()
        self._tracer = trace.get_tracer(
            "trainconductor.api", __version__, tracer_provider, schema_url=SCHEMA_URL
        )
        self._propagator: TextMapPropagator | None = None
        self._trace_fields: frozenset[str] = frozenset()

    def _caller_context(
        self, context: grpc.aio.ServicerContext[Any, Any]
    ) -> otel_context.Context | None:
        """The caller's trace context, if the call carries one (most do not)."""
        metadata = context.invocation_metadata()
        if not metadata:
            return None
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:  # its fields are built on each read
            self._propagator, self._trace_fields = propagator, frozenset(propagator.fields)
        if any(key in self._trace_fields for key, _ in metadata):
            return propagate.extract(dict(metadata))
        return None

    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # $package.$service/$method, the conventions' span name.
        name = method.lstrip("/")
        service, _, method_name = name.rpartition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method_name}
        tracer = self._tracer

        def begin(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> tuple[trace.Span, contextvars.Token[otel_context.Context]]:
            parent = self._caller_context(context)
            span = tracer.start_span(
                name, parent, kind=trace.SpanKind.SERVER, attributes=attributes
            )
            if span.is_recording():
                span.set_attributes(peer_attributes(context.peer()))
                call_context = trace.set_span_in_context(span, parent)
            else:
                call_context = _unrecorded(span, parent)
            return span, otel_context.attach(call_context)

        def end(
            state: tuple[trace.Span, contextvars.Token[otel_context.Context]],
            context: grpc.aio.ServicerContext[Any, Any],
            code: grpc.StatusCode,
            error: BaseException | None,
        ) -> None:
            span, token = state
            # A stream abandoned by grpc is closed later by the event loop,
            # in another context, where this call's token means nothing; the
            # call's own context ended with its task.
            if not isinstance(error, GeneratorExit):
                otel_context.detach(token)
            if span.is_recording():
                _finish(span, context, code, error)

        return around(handler, begin, end)
