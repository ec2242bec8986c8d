"""A release of the chart in a cluster, as an operator reads it: kubectl,
what runs in a namespace, what a release is made of and what an uninstall
leaves behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from kubernetes import client

from devstack.cluster import binary
from devstack.stack import Cluster
from devstack.waiting import wait_for
from tests.support.chart import Manifest, helm


def what_runs(kube: client.ApiClient, namespace: str) -> str:
    """The pods of a namespace and its latest events, for a failed install."""
    core = client.CoreV1Api(kube)
    lines = ["pods:"]
    for pod in core.list_namespaced_pod(namespace).items:
        ready = [c.type for c in pod.status.conditions or [] if c.status == "True"]
        lines.append(f"  {pod.metadata.name} {pod.status.phase} {ready}")
    lines.append("events:")
    events = core.list_namespaced_event(namespace).items
    for event in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time))[-20:]:
        lines.append(
            f"  {event.involved_object.kind}/{event.involved_object.name}: "
            f"{event.reason}: {event.message}"
        )
    return "\n".join(lines)


def kubectl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args],
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip


# Kinds the chart renders, by the name kubectl lists them under (namespaced
# unless in CLUSTER_SCOPED), and what Kubernetes makes of them.
RESOURCES = {
    "Deployment": "deployments.apps",
    "StatefulSet": "statefulsets.apps",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles.rbac.authorization.k8s.io",
    "RoleBinding": "rolebindings.rbac.authorization.k8s.io",
    "NetworkPolicy": "networkpolicies.networking.k8s.io",
    "PodDisruptionBudget": "poddisruptionbudgets.policy",
    "ServiceMonitor": "servicemonitors.monitoring.coreos.com",
    "PrometheusRule": "prometheusrules.monitoring.coreos.com",
    "ClusterRoleBinding": "clusterrolebindings.rbac.authorization.k8s.io",
    "ClusterRole": "clusterroles.rbac.authorization.k8s.io",
}
CLUSTER_SCOPED = {"ClusterRoleBinding", "ClusterRole"}
MADE_OF_THEM = (
    "replicasets.apps",
    "pods",
    "endpointslices.discovery.k8s.io",
    "persistentvolumeclaims",
)
# What every namespace holds from its creation.
NAMESPACE_DEFAULTS = {"configmap/kube-root-ca.crt", "serviceaccount/default"}


def left_behind(cluster: Cluster, kube: client.ApiClient, namespace: str, release: str) -> set[str]:
    """Whatever of the kinds the chart renders (and the ReplicaSets, pods,
    EndpointSlices and claims made of them) is in `namespace` beyond what a
    new namespace holds, and the cluster-wide roles and bindings labelled
    with the release that concern the namespace; as kubectl names them."""
    served = {g.name for g in client.ApisApi(kube).get_api_versions().groups}
    namespaced = [
        resource
        for kind, resource in RESOURCES.items()
        if kind not in CLUSTER_SCOPED
        and (not resource.endswith(".monitoring.coreos.com") or "monitoring.coreos.com" in served)
    ]
    listed = kubectl(cluster, "get", ",".join([*namespaced, *MADE_OF_THEM]), "-n", namespace,
                     "-o", "name")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    left = set(listed.stdout.split()) - NAMESPACE_DEFAULTS
    rbac = client.RbacAuthorizationV1Api(kube)
    selector = f"app.kubernetes.io/instance={release}"
    left |= {
        f"clusterrolebinding/{binding.metadata.name}"
        for binding in rbac.list_cluster_role_binding(label_selector=selector).items
        if any(subject.namespace == namespace for subject in binding.subjects or [])
    }
    left |= {
        f"clusterrole/{role.metadata.name}"
        for role in rbac.list_cluster_role(label_selector=selector).items
    }
    return left


def release_manifests(cluster: Cluster, release: str, namespace: str) -> list[Manifest]:
    """What `helm get manifest` says the release is made of."""
    result = helm("get", "manifest", release, "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    unknown = {m["kind"] for m in manifests} - RESOURCES.keys()
    assert not unknown, f"the chart renders {unknown}: add them to RESOURCES"
    return manifests


def uninstall_leaves(
    cluster: Cluster, kube: client.ApiClient, namespace: str, release: str, kept: set[str]
) -> None:
    """`helm uninstall` the release; then nothing of it is left but `kept`
    (the garbage collector gets a moment for the pods and EndpointSlices)."""
    result = helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s",
                  kubeconfig=cluster.kubeconfig)  # fmt: skip
    assert result.returncode == 0, result.stderr
    wait_for(
        f"only {sorted(kept)} to be left of the release {release}",
        lambda: left_behind(cluster, kube, namespace, release) == kept,
        timeout=60,
        describe=lambda: str(sorted(left_behind(cluster, kube, namespace, release))),
    )


# acting as the chart's accounts


def service_account_token(
    kube: client.ApiClient, namespace: str, account: str, audiences: list[str]
) -> str:
    """A token the API server issues to `account` (for itself, without `audiences`)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=audiences, expiration_seconds=3600)
    )
    issued = client.CoreV1Api(kube).create_namespaced_service_account_token(
        account, namespace, request
    )
    return str(issued.status.token)


def service_account_kubeconfig(
    cluster: Cluster, kube: client.ApiClient, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig that acts as `account`, with a token the API server issued to it."""
    token = service_account_token(kube, namespace, account, [])
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    kube_cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "cluster", "cluster": kube_cluster["cluster"]}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "cluster", "user": account}}],
                "current-context": "sa",
            }
        )
    )
    return path
