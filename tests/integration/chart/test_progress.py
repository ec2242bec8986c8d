"""How the chart sets up progress reports: each training pod gets the API's
address (its Service) and a token of the progress audience; the API gets
pods get in the trainings' namespace and nothing more, only when pods
report with tokens (not under auth mode none, nor when turned off)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.chart import CHART, NONE, RELEASE, Manifest, api_config, find, helm, render

API = f"{RELEASE}-train-conductor-api"


def controller_config(manifests: list[Manifest]) -> dict[str, Any]:
    config_map = find(manifests, "ConfigMap", f"{RELEASE}-train-conductor-controller")
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return config


def progress_rbac(manifests: list[Manifest]) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] in ("Role", "RoleBinding") and m["metadata"]["name"] == f"{API}-progress"
    ]


def test_training_pods_report_to_the_apis_service_with_a_token_of_their_own_audience() -> None:
    manifests = render(
        "--set", "training.namespace=ml-jobs",
        "--set", "progress.tokenAudience=tc-progress",
        "--set", "progress.eventIntervalSeconds=3",
        "--set", "progress.stallSeconds=600",
    )  # fmt: skip
    controller = controller_config(manifests)
    api = api_config(manifests)
    assert controller["progress_address"] == f"{API}.tc-system.svc:50051"
    assert controller["progress_token_audience"] == api["progress_token_audience"] == "tc-progress"
    assert controller["progress_stall_seconds"] == 600
    assert api["trainings_namespace"] == "ml-jobs"
    assert api["progress_event_interval_seconds"] == 3
    assert api["progress_token_cache_seconds"] == 60
    # Users' tokens and pods' tokens are for different audiences.
    assert api["token_review_audience"] != api["progress_token_audience"]

    role, binding = progress_rbac(manifests)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ml-jobs"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": API, "namespace": "tc-system"}
    ]


def test_an_address_of_the_operators_choice_is_given_to_the_pods() -> None:
    manifests = render("--set", "progress.address=tc-progress.example.net:443")
    assert controller_config(manifests)["progress_address"] == "tc-progress.example.net:443"


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(("--set", "progress.enabled=false"), id="progress reports turned off"),
        pytest.param(NONE, id="auth mode none, where a report names its training"),
    ],
)
def test_without_reports_by_token_pods_get_no_address_and_the_api_no_pod_rights(
    values: tuple[str, ...],
) -> None:
    manifests = render(*values)
    assert "progress_address" not in controller_config(manifests)
    assert progress_rbac(manifests) == []


def test_a_bad_address_is_refused() -> None:
    result = helm("template", RELEASE, str(CHART), "--set", "progress.address=http://x")
    assert result.returncode != 0
    assert "/progress/address" in result.stderr


def test_kubeflows_protocol_is_served_on_a_port_of_the_apis_service_when_asked() -> None:
    manifests = render(
        "--set", "progress.kubeflow.enabled=true", "--set", "progress.kubeflow.port=8090"
    )
    api = api_config(manifests)
    assert (api["kubeflow_status_enabled"], api["kubeflow_status_port"]) == (True, 8090)
    assert controller_config(manifests)["kubeflow_status_address"] == f"{API}.tc-system.svc:8090"
    service = find(manifests, "Service", API)
    assert {"name": "kubeflow-status", "port": 8090, "targetPort": "kubeflow-status",
            "protocol": "TCP", "appProtocol": "http"} in service["spec"]["ports"]  # fmt: skip
    container = find(manifests, "Deployment", API)["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "kubeflow-status", "containerPort": 8090, "protocol": "TCP"} in container[
        "ports"
    ]

    off = render()
    assert not api_config(off)["kubeflow_status_enabled"]
    assert "kubeflow_status_address" not in controller_config(off)
    assert [p["name"] for p in find(off, "Service", API)["spec"]["ports"]] == ["grpc"]


def test_a_progress_port_of_its_own_is_where_pods_report() -> None:
    manifests = render("--set", "progress.port=50061")
    assert api_config(manifests)["progress_grpc_port"] == 50061
    assert controller_config(manifests)["progress_address"] == f"{API}.tc-system.svc:50061"
    ports = {p["name"]: p["port"] for p in find(manifests, "Service", API)["spec"]["ports"]}
    assert ports == {"grpc": 50051, "grpc-progress": 50061}
    assert "progress_grpc_port" not in api_config(render())
