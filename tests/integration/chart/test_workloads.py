"""The workloads the chart renders: disruption budgets, a graceful end, the
resources asked for, and where trainings run."""

from __future__ import annotations

import pytest
import yaml

from tests.support.chart import ALLOW_NONE, CHART, RELEASE, api_prestop, find, helm, render


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_a_disruption_budget_is_made_only_where_a_pod_can_still_be_evicted(replicas: int) -> None:
    manifests = render(
        "--set", f"api.replicas={replicas}", "--set", f"controller.replicas={replicas}"
    )
    budgets = {
        m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "PodDisruptionBudget"
    }
    if replicas == 1:  # a budget would refuse every eviction: node drains would hang
        assert budgets == {}
    else:
        assert budgets.keys() == {
            f"{RELEASE}-train-conductor-api",
            f"{RELEASE}-train-conductor-controller",
        }
        assert all(spec["minAvailable"] < replicas for spec in budgets.values()), budgets


def test_a_terminating_api_serves_on_while_kubernetes_forgets_it() -> None:
    assert api_prestop(render()) == ["sleep", "5"]
    assert api_prestop(render("--set", "api.preStopSleepSeconds=0")) is None
    refused = helm("template", RELEASE, str(CHART), "--set", "api.preStopSleepSeconds=21")
    assert refused.returncode != 0, "a grace period shorter than preStop plus drain passed"
    assert "api.preStopSleepSeconds (21) plus api.drainSeconds (10)" in refused.stderr


def test_resources_take_any_quantity_kubernetes_takes() -> None:
    quantities = {"cpu": "1500m", "memory": "131072Ki"}
    sets = [f"api.resources.requests.{name}={value}" for name, value in quantities.items()]
    manifests = render(*(arg for value in sets for arg in ("--set", value)))
    deployment = find(manifests, "Deployment", f"{RELEASE}-train-conductor-api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == quantities


def test_trainings_can_run_in_a_namespace_of_their_own() -> None:
    manifests = render(*ALLOW_NONE, "--set", "training.namespace=trainings")
    name = f"{RELEASE}-train-conductor-controller"
    assert find(manifests, "Role", name)["metadata"]["namespace"] == "trainings"
    assert find(manifests, "RoleBinding", name)["metadata"]["namespace"] == "trainings"
    lease_role = find(manifests, "Role", f"{name}-leader-election")
    assert lease_role["metadata"]["namespace"] == "tc-system"
    config = yaml.safe_load(find(manifests, "ConfigMap", name)["data"]["config.yaml"])
    assert config["namespace"] == "trainings"
    assert config["lease_namespace"] == "tc-system"


def test_the_controller_may_make_headless_services_and_no_more() -> None:
    manifests = render(*ALLOW_NONE)
    role = find(manifests, "Role", f"{RELEASE}-train-conductor-controller")
    services = [r for r in role["rules"] if "services" in r["resources"]]
    # Made for a multi-node attempt, owned by its Job: Kubernetes deletes it.
    assert [(r["apiGroups"], sorted(r["verbs"])) for r in services] == [
        ([""], ["create", "list", "watch"])
    ]
