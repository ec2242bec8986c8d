"""One trace from a client's CreateTraining to the Job, in a real Jaeger."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from trainconductor.v1 import training_service_pb2 as pb

from devstack.jaeger import Jaeger
from devstack.processes import Service
from devstack.specs import lora_spec
from devstack.stack import Cluster, Stack, running_stack
from devstack.waiting import wait_for

CLIENT = "training-submitter"


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    server = Jaeger(tmp_path_factory.mktemp("jaeger"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traced_stack(
    cluster: Cluster, jaeger: Jaeger, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with running_stack(cluster, tmp_path_factory.mktemp("traced"), env) as stack:
        yield stack


def traced_create(stack: Stack, jaeger: Jaeger) -> tuple[str, str]:
    """CreateTraining from a client that traces itself, as an SDK user's
    program would: its span is exported to the same Jaeger."""
    provider = TracerProvider(resource=Resource.create({"service.name": CLIENT}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=jaeger.otlp_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("submit training") as span:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        response = stack.trainings.CreateTraining(
            pb.CreateTrainingRequest(spec=lora_spec()), metadata=tuple(carrier.items()), timeout=10
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id, response.training.id


@pytest.fixture(scope="module")
def traced_training(traced_stack: Stack, jaeger: Jaeger) -> tuple[str, pb.Training]:
    trace_id, training_id = traced_create(traced_stack, jaeger)
    return trace_id, traced_stack.wait_for_phase(training_id, {pb.PHASE_COMPLETED})


def test_a_training_is_one_trace_from_submission_to_its_job(
    traced_stack: Stack, jaeger: Jaeger, traced_training: tuple[str, pb.Training]
) -> None:
    trace_id, training = traced_training
    found = jaeger.trace(
        trace_id, wait_for={CLIENT, "trainconductor-api", "trainconductor-controller"}
    )
    operations = {span["operationName"] for span in found["spans"]}
    assert "submit training" in operations, "the client's own span"
    assert "trainconductor.v1.TrainingService/CreateTraining" in operations
    assert "EVALSHA" in operations, "the Redis call of the create has its span"
    assert "reconcile" in operations
    assert "kubernetes.create_job" in operations

    job = client.BatchV1Api(traced_stack.kube).read_namespaced_job(
        training.job_name, traced_stack.namespace
    )
    assert trace_id in job.metadata.annotations["trainconductor.dev/traceparent"]


def test_log_lines_of_both_services_carry_the_training_and_its_trace(
    traced_stack: Stack, traced_training: tuple[str, pb.Training]
) -> None:
    trace_id, training = traced_training

    def lines(service: Service, message: str) -> list[dict[str, object]]:
        written = service.log_text().splitlines(keepends=True)
        parsed = [json.loads(line) for line in written if line.endswith("\n")]
        return [
            line
            for line in parsed
            if line.get("message") == message and line.get("training_id") == training.id
        ]

    api = traced_stack.api
    assert api is not None
    # Lines below WARNING reach the file a moment after they are logged.
    created = wait_for(
        "the access log line of the CreateTraining call",
        lambda: [
            line
            for line in lines(api, "rpc")
            if str(line.get("grpc_method", "")).endswith("/CreateTraining")
        ],
        timeout=10,
    )
    assert created[0]["trace_id"] == trace_id
    job_created = wait_for(
        "the log line of the Job's creation",
        lambda: lines(traced_stack.controllers["controller-0"], "job created"),
        timeout=10,
    )
    assert job_created[0]["trace_id"] == trace_id
