"""The chart's trainings' logs: the API's rights to read pods and their logs
(and nothing more), the controller's to keep the end of each rank's log,
and the settings each gets; only when asked for."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.chart import (
    CHART,
    NO_POD_LOGS,
    RELEASE,
    api_config,
    api_pod_spec,
    find,
    helm,
    render,
)

API = f"{RELEASE}-train-conductor-api"
CONTROLLER = f"{RELEASE}-train-conductor-controller"
# The API's only other Kubernetes rights: progress reports and TokenReview.
NO_PROGRESS = ("--set", "progress.enabled=false", "--set", "auth.modes={static-token}",
               "--set", "auth.staticTokens.existingSecret=tokens")  # fmt: skip


def rules(role: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [
        (group, resource, sorted(rule["verbs"]))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    ]


@pytest.mark.parametrize(
    "namespace",
    [
        pytest.param((), id="trainings in the release's namespace"),
        pytest.param(("--set", "training.namespace=trainings"), id="trainings elsewhere"),
    ],
)
def test_the_api_may_read_the_trainings_pods_and_their_logs_and_nothing_more(
    namespace: tuple[str, ...],
) -> None:
    manifests = render(*NO_PROGRESS, *namespace)
    where = "trainings" if namespace else "tc-system"
    role = find(manifests, "Role", f"{API}-logs")
    assert role["metadata"]["namespace"] == where
    assert rules(role) == [("", "pods", ["get", "list"]), ("", "pods/log", ["get"])]
    binding = find(manifests, "RoleBinding", f"{API}-logs")
    assert binding["metadata"]["namespace"] == where
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": API, "namespace": "tc-system"}
    ]
    # No other Kubernetes right: no TokenReview, no progress' pods get.
    api_roles = [
        m["metadata"]["name"]
        for m in manifests
        if m["kind"] in ("Role", "ClusterRoleBinding") and m["metadata"]["name"].startswith(API)
    ]
    assert api_roles == [f"{API}-logs"]
    assert api_pod_spec(manifests)["automountServiceAccountToken"] is True
    config = api_config(manifests)
    assert config["pod_logs_enabled"] is True
    assert config["trainings_namespace"] == where
    assert config["log_line_max_bytes"] == 16384
    assert config["log_streams_max"] == 64


def test_without_logs_from_pods_the_api_gets_no_right_nor_token_for_them() -> None:
    manifests = render(*NO_PROGRESS, *NO_POD_LOGS)
    assert not [m for m in manifests if m["metadata"]["name"] == f"{API}-logs"]
    assert api_pod_spec(manifests)["automountServiceAccountToken"] is False
    assert api_config(manifests)["pod_logs_enabled"] is False


@pytest.mark.parametrize(
    ("kept", "reads_logs"),
    [pytest.param("65536", True, id="kept"), pytest.param("0", False, id="none kept")],
)
def test_the_controller_reads_logs_only_to_keep_their_ends(kept: str, reads_logs: bool) -> None:
    manifests = render("--set", f"logs.keptBytesPerRank={kept}")
    role = find(manifests, "Role", CONTROLLER)
    assert (("", "pods/log", ["get"]) in rules(role)) is reads_logs
    config_map = find(manifests, "ConfigMap", CONTROLLER)
    assert f"kept_log_bytes: {kept}" in config_map["data"]["config.yaml"]


@pytest.mark.parametrize(
    ("values", "says"),
    [
        pytest.param(("--set", "logs.maxLineBytes=600000"), "logs.maxLineBytes (600000)",
                     id="a line longer than a quarter of a message"),
        pytest.param(("--set", "logs.keptBytesPerRank=-1"), "keptBytesPerRank",
                     id="a negative size kept"),
        pytest.param(("--set", "logs.maxStream=3"), "maxStream", id="a typo"),
    ],
)  # fmt: skip
def test_bad_log_values_are_refused_naming_them(values: tuple[str, ...], says: str) -> None:
    result = helm("template", RELEASE, str(CHART), *values)
    assert result.returncode != 0
    assert says in result.stderr, result.stderr
