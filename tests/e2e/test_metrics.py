"""The services' metrics, as a real Prometheus scrapes and queries them."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb

from tests.e2e.stack import Stack
from tests.support.prometheus import Prometheus
from tests.support.specs import lora_spec


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[Prometheus]:
    controller_port = stack.controllers["controller-0"].env["http_port"]
    server = Prometheus(
        stack.log_dir / "prometheus",
        {
            "train-conductor-api": f"127.0.0.1:{stack.api_http_port}",
            "train-conductor-controller": f"127.0.0.1:{controller_port}",
        },
    )
    yield server
    server.stop()


def test_both_services_are_scraped(prometheus: Prometheus) -> None:
    assert prometheus.value('up{job="train-conductor-api"} == 1') == 1
    assert prometheus.value('up{job="train-conductor-controller"} == 1') == 1
    assert prometheus.value('count(trainconductor_build_info{service="api"})') == 1
    assert prometheus.value('count(trainconductor_build_info{service="controller"})') == 1


def test_an_operator_sees_a_training_go_through(stack: Stack, prometheus: Prometheus) -> None:
    training = stack.create(lora_spec())
    stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED})
    bad = lora_spec()
    bad.model_name = ""
    with pytest.raises(grpc.RpcError):
        stack.create(bad)
    # The names and labels existing gRPC dashboards query.
    handled = 'grpc_server_handled_total{grpc_service="trainconductor.v1.TrainingService",'
    assert prometheus.value(handled + 'grpc_method="CreateTraining",grpc_code="OK"} >= 1') >= 1
    assert (
        prometheus.value(handled + 'grpc_method="CreateTraining",grpc_code="InvalidArgument"} >= 1')
        >= 1
    )
    assert (
        prometheus.value('trainconductor_api_trainings_submitted_total{outcome="rejected"} >= 1')
        >= 1
    )
    assert (
        prometheus.value(
            "histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket"
            '{grpc_type="unary"}[1m]))) > 0'
        )
        > 0
    )
    # The controller's side.
    assert prometheus.value("trainconductor_controller_leader") == 1
    assert (
        prometheus.value(
            'trainconductor_controller_phase_transitions_total{to_phase="COMPLETED"} >= 1'
        )
        >= 1
    )
    assert (
        prometheus.value("trainconductor_controller_submit_to_job_created_seconds_count >= 1") >= 1
    )
    assert (
        prometheus.value(
            "sum(trainconductor_controller_kubernetes_requests_total"
            '{verb="create",resource="jobs",code="200"}) >= 1'
        )
        >= 1
    )
    assert (
        prometheus.value(
            'sum(trainconductor_redis_operation_duration_seconds_count{operation="create"}) >= 1'
        )
        >= 1
    )
    assert prometheus.value("trainconductor_controller_workqueue_depth") >= 0
