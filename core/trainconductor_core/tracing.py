"""OpenTelemetry set-up: on when an OTLP exporter is configured through the
standard OTEL_* variables, off otherwise (then every span is a no-op)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from trainconductor_core.settings import CommonSettings


class HashedOnce(Resource):
    """A Resource whose hash is computed once. The OTLP exporter groups the
    spans of each batch by their resource, hashing it for every span, and a
    Resource hashes by encoding its attributes as JSON: a share of every
    recorded call's cost (docs/performance.md). A Resource's attributes can
    not change, so neither can its hash."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


def service_resource(service_name: str) -> Resource:
    """The resource of this service's spans: `service_name` unless
    OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name the service otherwise.
    Resource.create reads them, but lets a name given to it win, so what
    they say is merged on top."""
    named = Resource.create({"service.name": service_name})
    return HashedOnce(named.merge(OTELResourceDetector().detect()))


def configure_tracing(service_name: str, settings: CommonSettings) -> bool:
    """Installs the OTLP exporter and the Redis instrumentation when tracing
    is configured; returns whether it is on."""
    if not settings.tracing_enabled:
        return False
    provider = TracerProvider(resource=service_resource(service_name))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint))
    )
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument()  # a span per Redis command
    return True
