"""The previous chart version, installed and upgraded to this one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from kubernetes import client

from devstack.cluster import ROOT
from devstack.stack import KWOK_TOLERATION, Cluster
from tests.support.chart import CHART, helm
from tests.support.chart_release import (
    RESOURCES,
    kubectl,
    release_manifests,
    uninstall_leaves,
    what_runs,
)

PREVIOUS_VERSION = "0.1.0"
CHART_YAML = "helm/train-conductor/Chart.yaml"


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def chart_version_at(revision: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:{CHART_YAML}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return str(yaml.safe_load(result.stdout)["version"]) if result.returncode == 0 else None


def previous_chart(into: Path) -> Path:
    """The chart as it last stood at PREVIOUS_VERSION: the tree of the commit
    before the one that moved Chart.yaml's version on, from the checkout's history."""
    for commit in git("log", "--format=%H", "--", CHART_YAML).split():
        if chart_version_at(f"{commit}^") == PREVIOUS_VERSION != chart_version_at(commit):
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", f"{commit}^", "helm/train-conductor"],
                capture_output=True, timeout=60, check=True,
            )  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
            return into / "helm" / "train-conductor"
    raise AssertionError(
        f"no commit in the history of {CHART_YAML} moves its version on from {PREVIOUS_VERSION}"
    )


def test_an_upgrade_from_the_previous_versions_defaults_then_an_uninstall_leave_nothing(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The previous version installed with its defaults, upgraded to this one
    with this one's defaults (both with what the local cluster needs: kwok's
    taint tolerated, and the previous version's only auth mode, none,
    accepted), then uninstalled: nothing the chart made is left."""
    old = previous_chart(tmp_path)
    cluster_needs = tmp_path / "cluster-needs.yaml"
    cluster_needs.write_text(
        yaml.safe_dump(
            {
                "auth": {"allowInsecureNone": True},
                "api": {"tolerations": KWOK_TOLERATION},
                "controller": {"tolerations": KWOK_TOLERATION},
            }
        )
    )
    # A release name of its own: the cluster-wide leftovers are found by it.
    release = f"up-{namespace.removeprefix('e2e-')}"
    options = ("-n", namespace, "-f", str(cluster_needs), "--wait", "--timeout", "120s")

    def chart_of_release() -> str:
        listed = helm("list", "-n", namespace, "-o", "json", kubeconfig=cluster.kubeconfig)
        [entry] = [r for r in json.loads(listed.stdout) if r["name"] == release]
        assert entry["status"] == "deployed", entry
        return str(entry["chart"])

    try:
        result = helm("install", release, str(old), *options, kubeconfig=cluster.kubeconfig)
        assert result.returncode == 0, f"{result.stderr}\n{what_runs(kube, namespace)}"
        assert chart_of_release() == f"train-conductor-{PREVIOUS_VERSION}"
        before = release_manifests(cluster, release, namespace)

        result = helm("upgrade", release, str(CHART), *options, kubeconfig=cluster.kubeconfig)
        assert result.returncode == 0, f"{result.stderr}\n{what_runs(kube, namespace)}"
        version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
        assert chart_of_release() == f"train-conductor-{version}"
        after = release_manifests(cluster, release, namespace)

        # Every replica runs this version's pod template.
        apps = client.AppsV1Api(kube)
        fullname = f"{release}-train-conductor"
        for component in ("api", "controller"):
            deployment = apps.read_namespaced_deployment(f"{fullname}-{component}", namespace)
            assert deployment.metadata.labels["helm.sh/chart"] == f"train-conductor-{version}"
            status = deployment.status
            assert status.observed_generation == deployment.metadata.generation, component
            assert status.updated_replicas == status.available_replicas == status.replicas, (
                component,
                status,
            )
        # The upgrade moved the API to this version's default, token-review.
        settings = yaml.safe_load(
            client.CoreV1Api(kube)
            .read_namespaced_config_map(f"{fullname}-api", namespace)
            .data["config.yaml"]
        )
        assert settings["auth_modes"] == ["token-review"]
        # What only the previous version rendered is gone.
        names = {(m["kind"], m["metadata"]["name"]) for m in after}
        dropped = [m for m in before if (m["kind"], m["metadata"]["name"]) not in names]
        for manifest in dropped:
            got = kubectl(cluster, "get", RESOURCES[manifest["kind"]], manifest["metadata"]["name"],
                          "-n", namespace, "--ignore-not-found", "-o", "name")  # fmt: skip
            assert got.stdout.strip() == "", f"the upgrade left {got.stdout.strip()}"

        uninstall_leaves(cluster, kube, namespace, release, kept=set())
    finally:
        helm("uninstall", release, "-n", namespace, kubeconfig=cluster.kubeconfig)
