"""The chart with queues (Kueue): what each service is told, and the rights
the controller gets for Kueue's objects, exactly those it uses, and none
without queues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.chart import (
    CHART,
    RELEASE,
    Manifest,
    Scenario,
    find,
    loaded_settings,
    pod_environment,
    render,
)

QUEUES = Scenario(CHART / "ci" / "queues-values.yaml")
CONTROLLER = f"{RELEASE}-train-conductor-controller"
PRIORITIES = f"{CONTROLLER}-tc-system-queue-priorities"
KUEUE_GROUPS = {"kueue.x-k8s.io", "visibility.kueue.x-k8s.io"}


def rules(role: Manifest) -> dict[tuple[str, str], list[str]]:
    """(apiGroup, resource) -> verbs, of each rule on one of Kueue's groups."""
    return {
        (group, resource): rule["verbs"]
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        if group in KUEUE_GROUPS
    }


def test_the_controller_gets_exactly_what_it_uses_of_kueue() -> None:
    manifests = render("-f", str(QUEUES.path))
    role = find(manifests, "Role", CONTROLLER)
    assert rules(role) == {
        ("kueue.x-k8s.io", "workloads"): ["get", "list", "patch", "watch"],
        ("kueue.x-k8s.io", "localqueues"): ["get", "list", "watch"],
        ("visibility.kueue.x-k8s.io", "localqueues/pendingworkloads"): ["get"],
    }
    # Priorities are cluster-wide: a ClusterRole, read only, bound to the
    # controller's account alone.
    cluster_role = find(manifests, "ClusterRole", PRIORITIES)
    assert rules(cluster_role) == {("kueue.x-k8s.io", "workloadpriorityclasses"): ["get", "list"]}
    assert len(cluster_role["rules"]) == 1
    binding = find(manifests, "ClusterRoleBinding", PRIORITIES)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": PRIORITIES,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": QUEUES.service_account("controller"),
         "namespace": "tc-system"}
    ]  # fmt: skip


def test_without_queues_the_controller_may_touch_nothing_of_kueue() -> None:
    manifests = render()
    assert rules(find(manifests, "Role", CONTROLLER)) == {}
    assert not [m for m in manifests if m["kind"] in ("ClusterRole", "ClusterRoleBinding")
                and m["metadata"]["name"] == PRIORITIES]  # fmt: skip


def test_trainings_wait_in_a_namespace_of_their_own_queues() -> None:
    """LocalQueues are namespaced: the controller reads those of the
    trainings' namespace, not its own."""
    manifests = render("-f", str(QUEUES.path), "--set", "training.namespace=trainings")
    role = find(manifests, "Role", CONTROLLER)
    assert role["metadata"]["namespace"] == "trainings"
    assert ("kueue.x-k8s.io", "workloads") in rules(role)
    lease_role = find(manifests, "Role", f"{CONTROLLER}-leader-election")
    assert rules(lease_role) == {}


def test_the_services_take_the_queue_settings_and_defaults(tmp_path: Path) -> None:
    manifests = render("-f", str(QUEUES.path))
    api = loaded_settings(
        "trainconductor_api.settings", "ApiSettings",
        pod_environment(manifests, "api", tmp_path / "api.yaml"),
    )  # fmt: skip
    assert api["queues_enabled"] is True
    assert (api["default_queue"], api["default_priority"]) == ("team-a", "low")
    # In the values' order: an owner in both groups gets nlp's queue.
    assert list(api["group_default_queues"].items()) == [("nlp", "team-b"), ("vision", "team-a")]
    controller = loaded_settings(
        "trainconductor_controller.settings", "ControllerSettings",
        pod_environment(manifests, "controller", tmp_path / "controller.yaml"),
    )  # fmt: skip
    assert controller["queues_enabled"] is True
    assert controller["queue_position_refresh_seconds"] == 1


def test_the_first_listed_group_wins_however_the_groups_are_named(tmp_path: Path) -> None:
    """toYaml would sort a mapping by name; the chart keeps the list's order."""
    manifests = render(
        "--set", "queues.enabled=true",
        "--set", "queues.groupDefaults[0].group=zeta", "--set", "queues.groupDefaults[0].queue=z",
        "--set", "queues.groupDefaults[1].group=alpha", "--set", "queues.groupDefaults[1].queue=a",
    )  # fmt: skip
    api: dict[str, Any] = loaded_settings(
        "trainconductor_api.settings", "ApiSettings",
        pod_environment(manifests, "api", tmp_path / "api.yaml"),
    )  # fmt: skip
    assert list(api["group_default_queues"]) == ["zeta", "alpha"]
    assert api["default_queue"] == ""


def test_the_queue_alert_is_made_with_queues_only() -> None:
    monitoring = ("--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
                  "--set", "prometheusRule.enabled=true",
                  "--set", "api.serviceMonitor.enabled=true",
                  "--set", "controller.serviceMonitor.enabled=true")  # fmt: skip

    def alerts(*args: str) -> dict[str, str]:
        rule = next(m for m in render(*monitoring, *args) if m["kind"] == "PrometheusRule")
        return {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}

    assert "TrainConductorQueueWaitTooLong" not in alerts()
    # queues-values.yaml: half an hour.
    expr = alerts("-f", str(QUEUES.path))["TrainConductorQueueWaitTooLong"]
    assert expr.strip().endswith("> 1800"), expr
