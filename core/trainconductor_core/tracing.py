"""OpenTelemetry set-up: on when an OTLP exporter is configured through the
standard OTEL_* variables, off otherwise (then every span is a no-op)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from trainconductor_core.settings import CommonSettings


def configure_tracing(service_name: str, settings: CommonSettings) -> bool:
    """Installs the OTLP exporter and the Redis instrumentation when tracing
    is configured; returns whether it is on."""
    if not settings.tracing_enabled:
        return False
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
    # which win over the default name given here.
    resource = Resource.create({"service.name": service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint))
    )
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument()  # a span per Redis command
    return True
