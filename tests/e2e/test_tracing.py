"""One trace from a client's CreateTraining to the Job, in a real Jaeger."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from tests.e2e.conftest import Cluster, running_stack
from tests.e2e.stack import Stack
from tests.support.jaeger import Jaeger
from tests.support.specs import lora_spec


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


def test_a_training_is_one_trace_from_submission_to_its_job(
    traced_stack: Stack, jaeger: Jaeger
) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"  # the client's own span
    response = traced_stack.trainings.CreateTraining(
        pb.CreateTrainingRequest(spec=lora_spec()),
        metadata=(("traceparent", traceparent),),
        timeout=10,
    )
    training = traced_stack.wait_for_phase(response.training.id, {pb.PHASE_COMPLETED})

    found = jaeger.trace(trace_id, wait_for={"trainconductor-api", "trainconductor-controller"})
    operations = {span["operationName"] for span in found["spans"]}
    assert "/trainconductor.v1.TrainingService/CreateTraining" in operations
    assert "EVALSHA" in operations, "the Redis call of the create has its span"
    assert "reconcile" in operations
    assert "kubernetes.create_job" in operations

    job = client.BatchV1Api(traced_stack.kube).read_namespaced_job(
        training.job_name, traced_stack.namespace
    )
    assert trace_id in job.metadata.annotations["trainconductor.dev/traceparent"]


def test_logs_carry_the_trace_and_training_ids(traced_stack: Stack) -> None:
    log = traced_stack.controllers["controller-0"].log_path.read_text()
    created = [line for line in log.splitlines() if '"job created"' in line]
    assert created
    assert '"trace_id"' in created[0]
    assert '"training_id"' in created[0]
