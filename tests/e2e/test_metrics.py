"""The services' metrics as an operator uses them: a real Prometheus scrapes
both services while a scenario runs, and every query of the shipped
dashboard, run against it, returns data that agrees with the scenario."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.cluster import ROOT
from devstack.prometheus import Prometheus
from devstack.specs import lora_spec
from devstack.stack import Stack

DASHBOARD = ROOT / "helm" / "train-conductor" / "dashboards" / "train-conductor.json"
# Panels fed by redis_exporter, which the chart runs beside its bundled Redis
# but which can not be built here (its module is not served by the proxy).
EXPORTER_METRICS = ("redis_up", "redis_connected_clients", "redis_memory", "redis_aof")
# Panels fed only where trainings wait in Kueue's queues, which this stack
# runs without: tests/e2e/test_preemption.py shows them with data.
QUEUE_METRICS = ("trainconductor_queue_",)


@dataclass(frozen=True)
class Scenario:
    completed: str
    failed: str
    canceled: str


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[Prometheus]:
    controller_port = stack.controllers["controller-0"].http_port
    server = Prometheus(
        stack.log_dir / "prometheus",
        {
            "train-conductor-api": f"127.0.0.1:{stack.api_http_port}",
            "train-conductor-controller": f"127.0.0.1:{controller_port}",
        },
        labels={"namespace": stack.namespace},
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scenario(stack: Stack, prometheus: Prometheus) -> Scenario:
    """One training completed, one failed, one canceled, one rejected, one watched."""
    completed = stack.create(lora_spec("completes"))
    failed = stack.create(lora_spec("fails"))
    stack.fail_pod(f"train-{failed.id}", 2, "Error", "out of data")
    spec = lora_spec("waits")
    spec.resources.gpus = 8  # never schedulable: canceled while QUEUED
    canceled = stack.create(spec)
    stack.wait_for_phase(canceled.id, {pb.PHASE_QUEUED})
    stack.cancel(canceled.id)
    bad = lora_spec()
    bad.parameters.learning_rate = 3
    with pytest.raises(grpc.RpcError):
        stack.create(bad)
    for training_id in (completed.id, failed.id, canceled.id):
        list(stack.trainings.WatchTraining(pb.WatchTrainingRequest(id=training_id), timeout=60))
    return Scenario(completed.id, failed.id, canceled.id)


def test_promtool_finds_nothing_wrong_in_either_metrics_page(stack: Stack) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make deps` installs Debian's prometheus"
    for port in (stack.api_http_port, stack.controllers["controller-0"].http_port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            page = response.read()
        result = subprocess.run(
            [promtool, "check", "metrics"], input=page, capture_output=True, check=False
        )
        assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_the_counts_agree_with_what_happened(
    stack: Stack, prometheus: Prometheus, scenario: Scenario
) -> None:
    for training_id in (scenario.completed, scenario.failed, scenario.canceled):
        stack.wait_for_phase(training_id, {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED})
    submitted = "trainconductor_api_trainings_submitted_total"
    assert prometheus.value(f'{submitted}{{outcome="created"}} == 3') == 3
    assert prometheus.value(f'{submitted}{{outcome="rejected"}} == 1') == 1
    transitions = "trainconductor_controller_phase_transitions_total"
    for phase in ("COMPLETED", "FAILED", "CANCELED"):
        assert prometheus.value(f'sum({transitions}{{to_phase="{phase}"}}) == 1') == 1
    handled = 'grpc_server_handled_total{grpc_service="trainconductor.v1.TrainingService"'
    assert (
        prometheus.value(
            handled + ',grpc_method="CreateTraining",grpc_code="InvalidArgument"} == 1'
        )
        == 1
    )
    assert prometheus.value(handled + ',grpc_method="WatchTraining",grpc_code="OK"} >= 3') >= 3
    assert prometheus.value("trainconductor_controller_leader == 1") == 1
    assert prometheus.value('count(trainconductor_build_info{service=~"api|controller"}) == 2') == 2


def dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = []

    def walk(items: list[dict[str, object]]) -> None:
        for panel in items:
            walk(panel.get("panels", []))  # type: ignore[arg-type]
            for target in panel.get("targets", []):  # type: ignore[attr-defined]
                queries.append((str(panel["title"]), str(target["expr"])))

    walk(panels)
    return queries


def test_every_dashboard_query_returns_data(
    stack: Stack, prometheus: Prometheus, scenario: Scenario
) -> None:
    queries = dashboard_queries()
    assert len(queries) > 20
    empty = []
    for title, expr in queries:
        if any(name in expr for name in EXPORTER_METRICS + QUEUE_METRICS):
            continue
        query = (
            expr.replace("$namespace", stack.namespace)
            .replace("$__rate_interval", "2m")
            .replace("$__range", "10m")
        )
        if not prometheus.has_data(query, timeout=20):
            empty.append(f"{title}: {query}")
    assert empty == [], "dashboard panels without data:\n" + "\n".join(empty)
