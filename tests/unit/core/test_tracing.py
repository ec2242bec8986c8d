from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trainconductor_core.tracing import service_resource


def test_the_resource_is_the_one_opentelemetry_would_make(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.namespace.name=training,team=ml")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    plain = Resource.create({"service.name": "trainconductor-api"})

    resource = service_resource("trainconductor-api")

    assert resource == plain
    assert plain == resource
    assert hash(resource) == hash(plain)
    assert resource.attributes["service.name"] == "trainconductor-api"
    assert resource.attributes["k8s.namespace.name"] == "training"


def test_the_service_name_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=api-attrs,team=ml")
    assert service_resource("trainconductor-api").attributes["service.name"] == "api-attrs"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "api-eu")
    resource = service_resource("trainconductor-api")
    assert resource.attributes["service.name"] == "api-eu"
    assert resource.attributes["team"] == "ml"
    assert resource.attributes["telemetry.sdk.name"] == "opentelemetry"


def test_spans_of_the_resource_are_exported_under_it_once() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=service_resource("trainconductor-api"))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for name in ("a", "b", "c"):
        tracer.start_span(name).end()

    request = encode_spans(exporter.get_finished_spans())

    assert len(request.resource_spans) == 1
    (group,) = request.resource_spans
    attributes = {kv.key: kv.value.string_value for kv in group.resource.attributes}
    assert attributes["service.name"] == "trainconductor-api"
    assert [s.name for scope in group.scope_spans for s in scope.spans] == ["a", "b", "c"]
