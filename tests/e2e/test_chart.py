"""The Helm chart as an operator meets it: each ci/*-values.yaml scenario
installed with `helm install --wait` on the real control plane, the values it
must refuse, and the services running with what it renders."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
import yaml
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.cluster import ROOT, binary
from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from devstack.stack import Cluster, wait_for
from trainconductor_core.redis_config import REDIS_CONFIG

CHART = ROOT / "helm" / "train-conductor"
SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))
RELEASE = "tc"
MONITORING_APIS = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)
ALLOW_NONE = ("--set", "auth.allowInsecureNone=true")
NONE = ("--set", "auth.modes={none}", *ALLOW_NONE)
STATIC_TOKENS = ("--set", "auth.staticTokens.existingSecret=tokens")
SECURITY_DOC = ROOT / "docs" / "security.md"

Manifest = dict[str, Any]


# helm


def helm(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    config = ("--kubeconfig", str(kubeconfig)) if kubeconfig else ()
    return subprocess.run(
        [binary("helm"), *args, *config], text=True, capture_output=True, timeout=300
    )


def render(*args: str) -> list[Manifest]:
    """`helm template` of the chart; the manifests it renders."""
    result = helm("template", RELEASE, str(CHART), "--namespace", "tc-system", *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    names = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]
    raise AssertionError(f"no {kind} {name} among {names}")


def merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return copy.deepcopy(override)


@dataclass(frozen=True)
class Scenario:
    """One ci/*-values.yaml file and the chart's values it amounts to."""

    path: Path

    @property
    def values(self) -> dict[str, Any]:
        defaults = yaml.safe_load((CHART / "values.yaml").read_text())
        values: dict[str, Any] = merged(defaults, yaml.safe_load(self.path.read_text()) or {})
        return values

    def name(self, component: str) -> str:
        return f"{RELEASE}-train-conductor-{component}"

    def service_account(self, component: str) -> str:
        return str(self.values[component]["serviceAccount"]["name"] or self.name(component))

    @property
    def auth_modes(self) -> list[str]:
        auth = self.values["auth"]
        return [auth["mode"]] if auth.get("mode") else list(auth["modes"])

    @property
    def token_review(self) -> bool:
        return "token-review" in self.auth_modes

    def secrets_named(self) -> list[str]:
        """Secrets the scenario expects the operator to have made."""
        values = self.values
        redis = values["redis"]
        names = [
            *values["imagePullSecrets"],
            redis["existingSecret"],
            redis["tls"]["caSecret"],
            redis["sentinel"]["existingSecret"] if redis["sentinel"]["hosts"] else "",
            *(user["existingSecret"] for user in redis["users"].values()),
            values["api"]["tls"]["secretName"] if values["api"]["tls"]["enabled"] else "",
            values["auth"]["staticTokens"]["existingSecret"]
            if "static-token" in self.auth_modes
            else "",
        ]
        return [n for n in names if n]


def scenario_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


# Kubernetes, as an operator reads it


def make_secrets(kube: client.ApiClient, namespace: str, scenario: Scenario) -> None:
    core = client.CoreV1Api(kube)
    values = scenario.values
    redis = values["redis"]
    redis_users = {u["existingSecret"]: u for u in redis["users"].values() if u["existingSecret"]}
    pem = "-----BEGIN CERTIFICATE-----\n"
    for name in scenario.secrets_named():
        if name in values["imagePullSecrets"]:
            config = json.dumps({"auths": {"registry.example.com": {"auth": "dTpw"}}})
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                type="kubernetes.io/dockerconfigjson",
                string_data={".dockerconfigjson": config},
            )
        elif name == redis["existingSecret"]:
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                string_data={redis["existingSecretPasswordKey"]: "s3cret"},
            )
        elif name == redis["sentinel"]["existingSecret"]:
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                string_data={redis["sentinel"]["existingSecretPasswordKey"]: "s3ntinel"},
            )
        elif name in redis_users:
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                string_data={redis_users[name]["existingSecretPasswordKey"]: "s3cret-too"},
            )
        elif name == values["api"]["tls"]["secretName"]:
            # What cert-manager writes: a kubernetes.io/tls Secret with the CA beside.
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                type="kubernetes.io/tls",
                string_data={
                    "tls.crt": pem,
                    "tls.key": "-----BEGIN PRIVATE KEY-----\n",
                    "ca.crt": pem,
                },
            )
        elif name == values["auth"]["staticTokens"]["existingSecret"]:
            digest = hashlib.sha256(b"t0ken").hexdigest()
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                string_data={values["auth"]["staticTokens"]["key"]: f"sha256:{digest} ci\n"},
            )
        else:
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                string_data={redis["tls"]["caKey"]: "-----BEGIN CERTIFICATE-----\n"},
            )
        core.create_namespaced_secret(namespace, secret)


def volume_for_redis(kube: client.ApiClient, namespace: str, scenario: Scenario) -> str | None:
    """The local cluster has no volume provisioner: a PersistentVolume made
    for the bundled Redis' claim stands in for one. Returns its name."""
    redis = scenario.values["redis"]
    if not (redis["enabled"] and redis["persistence"]["enabled"]):
        return None
    name = f"{namespace}-redis"
    claim = f"data-{scenario.name('redis')}-0"
    client.CoreV1Api(kube).create_persistent_volume(
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": redis["persistence"]["size"]},
                access_modes=redis["persistence"]["accessModes"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                host_path=client.V1HostPathVolumeSource(path=f"/tmp/{name}"),
                claim_ref=client.V1ObjectReference(namespace=namespace, name=claim),
            ),
        )
    )
    return name


def rules_of(role: Any) -> dict[tuple[str, str, str], set[str]]:
    """(apiGroup, resource, resourceName or '*') -> verbs."""
    granted: dict[tuple[str, str, str], set[str]] = {}
    for rule in role.rules:
        for group in rule.api_groups:
            for resource in rule.resources:
                for name in rule.resource_names or ["*"]:
                    granted.setdefault((group, resource, name), set()).update(rule.verbs)
    return granted


def allowed(
    kube: client.ApiClient,
    user: str,
    verb: str,
    resource: str,
    namespace: str,
    *,
    group: str = "",
    name: str = "",
    cluster_wide: bool = False,
) -> bool:
    """Whether the ServiceAccount `user` of `namespace` may do it (in `namespace`,
    or on a cluster-wide resource with `cluster_wide`)."""
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb,
                resource=resource,
                group=group,
                namespace="" if cluster_wide else namespace,
                name=name,
            ),
        )
    )
    answer = client.AuthorizationV1Api(kube).create_subject_access_review(review)
    return bool(answer.status.allowed)


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


def env_of(container: Any) -> dict[str, Any]:
    return {e.name: e for e in container.env or []}


def kubectl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args],
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip


def can_i(cluster: Cluster, user: str, *args: str) -> bool:
    """`kubectl auth can-i ARGS --as=USER`."""
    result = kubectl(cluster, "auth", "can-i", *args, f"--as={user}")
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {args}: {result.stderr}"
    return answer == "yes"


Grant = tuple[str, str, str]  # resource, resource names, verbs; as can-i --list prints them


def granted(cluster: Cluster, user: str, namespace: str) -> set[Grant]:
    """What `kubectl auth can-i --list --as=USER` says USER may do to resources
    in `namespace` (cluster-wide grants included)."""
    result = kubectl(cluster, "auth", "can-i", "--list", "-n", namespace, f"--as={user}")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    names, verbs = header.index("Resource Names"), header.index("Verbs")
    urls = header.index("Non-Resource URLs")
    return {
        (row[:urls].strip(), row[names:verbs].strip(), row[verbs:].strip())
        for row in rows
        if row[:urls].strip()
    }


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


# Redis ACL users


def acl_users(text: str) -> dict[str, str]:
    """The `user NAME RULES` lines of an ACL file, by user (rules as written)."""
    lines = re.findall(r"^user (\S+) (.+)$", text, re.MULTILINE)
    return {user: " ".join(rules.split()) for user, rules in lines}


def documented_acl() -> dict[str, str]:
    """The users docs/security.md gives the services and redis_exporter, their
    rules without the password placeholder."""
    text = SECURITY_DOC.read_text()
    lines = re.findall(r"^ACL SETUSER (\S+) (.+)$", text, re.MULTILINE)
    lines += [(u, r) for u, r in acl_users(text).items() if u == "tc-exporter"]
    users = {user: " ".join(re.sub(r">\S+", "", rules).split()) for user, rules in lines}
    assert set(users) == {"tc-api", "tc-controller", "tc-exporter"}, users
    return users


# installed


@pytest.fixture(params=SCENARIOS, ids=scenario_id)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return Scenario(request.param)


@dataclass
class Installed:
    scenario: Scenario
    namespace: str
    notes: str


@pytest.fixture
def installed(
    cluster: Cluster, kube: client.ApiClient, namespace: str, scenario: Scenario
) -> Iterator[Installed]:
    make_secrets(kube, namespace, scenario)
    volume = volume_for_redis(kube, namespace, scenario)
    try:
        result = helm(
            "install", RELEASE, str(CHART),
            "--namespace", namespace,
            "-f", str(scenario.path),
            "--wait", "--timeout", "120s",
            kubeconfig=cluster.kubeconfig,
        )  # fmt: skip
        assert result.returncode == 0, (
            f"helm install failed:\n{result.stderr}\n{what_runs(kube, namespace)}"
        )
        yield Installed(scenario, namespace, result.stdout)
        helm("uninstall", RELEASE, "--namespace", namespace, kubeconfig=cluster.kubeconfig)
    finally:
        if volume:
            client.CoreV1Api(kube).delete_persistent_volume(volume)


def test_deployments_are_available_with_the_replicas_asked_for(
    kube: client.ApiClient, installed: Installed
) -> None:
    apps = client.AppsV1Api(kube)
    values = installed.scenario.values
    for component in ("api", "controller"):
        deployment = apps.read_namespaced_deployment(
            installed.scenario.name(component), installed.namespace
        )
        assert deployment.spec.replicas == values[component]["replicas"]
        assert deployment.status.available_replicas == values[component]["replicas"], component
    if installed.scenario.path.name == "default-values.yaml":
        controller = apps.read_namespaced_deployment(
            installed.scenario.name("controller"), installed.namespace
        )
        assert controller.spec.replicas == 2, "leader election wants a standby replica"


def test_api_is_reachable_through_its_services(
    kube: client.ApiClient, installed: Installed
) -> None:
    core = client.CoreV1Api(kube)
    values = installed.scenario.values["api"]
    service = core.read_namespaced_service(installed.scenario.name("api"), installed.namespace)
    assert service.spec.type == "ClusterIP"
    assert service.spec.cluster_ip not in (None, "None")
    # gRPC only: the metrics stay inside the cluster even when this
    # Service is made a LoadBalancer.
    assert {p.name: p.port for p in service.spec.ports} == {"grpc": values["grpc"]["port"]}

    headless_name = f"{installed.scenario.name('api')}-headless"
    headless = core.read_namespaced_service(headless_name, installed.namespace)
    assert headless.spec.cluster_ip == "None"
    assert {p.name: p.port for p in headless.spec.ports} == {
        "grpc": values["grpc"]["port"],
        "http-metrics": values["metrics"]["port"],
    }
    assert headless.spec.selector == service.spec.selector

    # The headless name resolves to every ready API pod.
    slices = (
        client.DiscoveryV1Api(kube)
        .list_namespaced_endpoint_slice(
            installed.namespace, label_selector=f"kubernetes.io/service-name={headless_name}"
        )
        .items
    )
    ready = [e for s in slices for e in s.endpoints or [] if e.conditions.ready]
    assert len(ready) == values["replicas"]

    target = f"dns:///{headless_name}.{installed.namespace}.svc:{values['grpc']['port']}"
    assert target in installed.notes, installed.notes
    assert "tcctl create" in installed.notes


def test_controller_role_grants_exactly_what_it_needs(
    kube: client.ApiClient, installed: Installed
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube)
    name = installed.scenario.name("controller")
    lease = installed.scenario.values["controller"]["leaderElection"]["leaseName"] or name
    jobs_role = rbac.read_namespaced_role(name, installed.namespace)
    assert rules_of(jobs_role) == {
        ("batch", "jobs", "*"): {"create", "delete", "get", "list", "patch", "watch"},
        ("", "pods", "*"): {"get", "list", "watch"},
        ("", "events", "*"): {"list", "watch"},
    }
    lease_role = rbac.read_namespaced_role(f"{name}-leader-election", installed.namespace)
    assert rules_of(lease_role) == {
        ("coordination.k8s.io", "leases", "*"): {"create"},
        ("coordination.k8s.io", "leases", lease): {"get", "update"},
    }

    # What the real authorizer makes of it, for the controller's account.
    account = installed.scenario.service_account("controller")
    user = f"system:serviceaccount:{installed.namespace}:{account}"
    ns = installed.namespace
    assert allowed(kube, user, "create", "jobs", ns, group="batch")
    assert allowed(kube, user, "watch", "pods", ns)
    assert allowed(kube, user, "watch", "events", ns)
    assert not allowed(kube, user, "create", "events", ns)
    assert allowed(kube, user, "update", "leases", ns, group="coordination.k8s.io", name=lease)
    assert not allowed(kube, user, "update", "leases", ns, group="coordination.k8s.io", name="x")
    assert not allowed(kube, user, "create", "pods", ns)
    assert not allowed(kube, user, "get", "secrets", ns)
    assert not allowed(kube, user, "create", "jobs", "kube-system", group="batch")

    api_user = f"system:serviceaccount:{ns}:{installed.scenario.service_account('api')}"
    assert not allowed(kube, api_user, "list", "jobs", ns, group="batch")


def test_api_may_review_tokens_only_with_token_review(
    kube: client.ApiClient, installed: Installed
) -> None:
    """token-review: the API's account is bound to system:auth-delegator, and
    to nothing else; any other mode: no binding, no Kubernetes permission."""
    ns = installed.namespace
    account = installed.scenario.service_account("api")
    api_user = f"system:serviceaccount:{ns}:{account}"
    bindings = [
        b
        for b in client.RbacAuthorizationV1Api(kube)
        .list_cluster_role_binding(label_selector="app.kubernetes.io/instance=tc")
        .items
        if any(s.namespace == ns for s in b.subjects or [])
    ]
    if installed.scenario.token_review:
        assert len(bindings) == 1, [b.metadata.name for b in bindings]
        binding = bindings[0]
        assert (binding.role_ref.kind, binding.role_ref.name) == (
            "ClusterRole",
            "system:auth-delegator",
        )
        assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
            ("ServiceAccount", account, ns)
        ]
    else:
        assert not bindings, [b.metadata.name for b in bindings]
    may_review = allowed(
        kube, api_user, "create", "tokenreviews", ns,
        group="authentication.k8s.io", cluster_wide=True,
    )  # fmt: skip
    assert may_review == installed.scenario.token_review
    assert not allowed(kube, api_user, "get", "secrets", ns)
    assert not allowed(kube, api_user, "list", "pods", ns, cluster_wide=True)


def test_kubectl_auth_can_i_shows_least_privilege(cluster: Cluster, installed: Installed) -> None:
    """What `kubectl auth can-i --as=system:serviceaccount:...` answers for
    the chart's accounts: the controller may do what it does and nothing
    broader; the API nothing, but review tokens with token-review. "Nothing"
    is what an account without any binding may do (discovery, self reviews)."""
    scenario, ns = installed.scenario, installed.namespace
    controller = f"system:serviceaccount:{ns}:{scenario.service_account('controller')}"
    api = f"system:serviceaccount:{ns}:{scenario.service_account('api')}"
    nobody = f"system:serviceaccount:{ns}:nobody"
    training = scenario.values["training"]["namespace"] or ns
    lease = scenario.values["controller"]["leaderElection"]["leaseName"] or scenario.name(
        "controller"
    )
    leases = "leases.coordination.k8s.io"
    answers = {
        (user, args): can_i(cluster, user, *args)
        for user, args in [
            *((controller, (verb, "jobs.batch", "-n", training))
              for verb in ("create", "delete", "get", "list", "patch", "watch")),
            *((controller, (verb, "pods", "-n", training)) for verb in ("get", "list", "watch")),
            *((controller, (verb, "events", "-n", training)) for verb in ("list", "watch")),
            *((controller, (verb, f"{leases}/{lease}", "-n", ns))
              for verb in ("get", "create", "update")),
        ]
    }  # fmt: skip
    refused = {
        (user, args): can_i(cluster, user, *args)
        for user, args in [
            (controller, ("create", "jobs.batch", "-n", "default")),
            (controller, ("get", "secrets", "-n", training)),
            (controller, ("list", "jobs.batch", "--all-namespaces")),
            (controller, ("create", "pods", "-n", training)),
            (controller, ("update", f"{leases}/someone-elses", "-n", ns)),
            (api, ("get", "secrets", "-n", ns)),
            (api, ("list", "pods", "-n", ns)),
            (api, ("create", "jobs.batch", "-n", ns)),
            (api, ("get", f"{leases}/{lease}", "-n", ns)),
        ]
    }
    assert [case for case, yes in answers.items() if not yes] == []
    assert [case for case, yes in refused.items() if yes] == []

    baseline = granted(cluster, nobody, ns)
    reviews = {
        ("tokenreviews.authentication.k8s.io", "[]", "[create]"),
        ("subjectaccessreviews.authorization.k8s.io", "[]", "[create]"),
    }
    assert granted(cluster, api, ns) - baseline == (reviews if scenario.token_review else set())
    assert can_i(cluster, api, "create", "tokenreviews.authentication.k8s.io") is (
        scenario.token_review
    )
    work = {
        ("jobs.batch", "[]", "[create delete get list patch watch]"),
        ("pods", "[]", "[get list watch]"),
        ("events", "[]", "[list watch]"),
    }
    election = {(leases, "[]", "[create]"), (leases, f"[{lease}]", "[get update]")}
    expected = {ns: work | election} if training == ns else {training: work, ns: election}
    for where, grants in expected.items():
        assert granted(cluster, controller, where) - baseline == grants, where


def test_uninstall_leaves_nothing_the_chart_made(
    cluster: Cluster, kube: client.ApiClient, installed: Installed
) -> None:
    """Nothing but the operator's own Secrets and, with the bundled Redis, its
    data: the StatefulSet keeps the claim on purpose (Retain; README, Uninstalling)."""
    scenario, ns = installed.scenario, installed.namespace
    kept = {f"secret/{name}" for name in scenario.secrets_named()}
    redis_values = scenario.values["redis"]
    if redis_values["enabled"] and redis_values["persistence"]["enabled"]:
        manifests = release_manifests(cluster, RELEASE, ns)
        statefulset = find(manifests, "StatefulSet", scenario.name("redis"))
        assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"] == {
            "whenDeleted": "Retain",
            "whenScaled": "Retain",
        }
        kept.add(f"persistentvolumeclaim/data-{scenario.name('redis')}-0")
    uninstall_leaves(cluster, kube, ns, RELEASE, kept)


def test_api_pods_carry_a_token_only_with_token_review(
    kube: client.ApiClient, installed: Installed
) -> None:
    core = client.CoreV1Api(kube)
    token_review = installed.scenario.token_review
    account = core.read_namespaced_service_account(
        installed.scenario.service_account("api"), installed.namespace
    )
    assert account.automount_service_account_token is token_review
    pods = core.list_namespaced_pod(
        installed.namespace, label_selector="app.kubernetes.io/component=api"
    ).items
    assert pods
    for pod in pods:
        assert pod.spec.automount_service_account_token is token_review, pod.metadata.name
        mounted = [v.name for v in pod.spec.volumes if v.projected is not None]
        if token_review:
            assert mounted, f"{pod.metadata.name} mounts no token to review others' with"
        else:
            assert not mounted, f"{pod.metadata.name} mounts a token: {mounted}"


def test_every_container_runs_as_non_root_on_a_read_only_root(
    kube: client.ApiClient, installed: Installed
) -> None:
    pods = (
        client.CoreV1Api(kube)
        .list_namespaced_pod(installed.namespace, label_selector="app.kubernetes.io/instance=tc")
        .items
    )
    components = {p.metadata.labels["app.kubernetes.io/component"] for p in pods}
    expected = {"api", "controller"} | (
        {"redis"} if installed.scenario.values["redis"]["enabled"] else set()
    )
    assert components == expected
    for pod in pods:
        pod_context = pod.spec.security_context
        for container in pod.spec.containers:
            where = f"{pod.metadata.name}/{container.name}"
            context = container.security_context
            assert context is not None, f"{where} has no securityContext"
            # A container's own setting wins over the pod's.
            non_root = first_set(context.run_as_non_root, pod_context.run_as_non_root)
            seccomp = first_set(context.seccomp_profile, pod_context.seccomp_profile)
            assert non_root is True, where
            assert seccomp is not None, where
            assert seccomp.type == "RuntimeDefault", where
            assert context.read_only_root_filesystem is True, where
            assert context.allow_privilege_escalation is False, where
            assert context.capabilities.drop == ["ALL"], where


def first_set(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def test_redis_runs_in_the_release_only_when_asked_and_keeps_its_data(
    cluster: Cluster, kube: client.ApiClient, installed: Installed
) -> None:
    redis = installed.scenario.values["redis"]
    apps = client.AppsV1Api(kube)
    statefulsets = apps.list_namespaced_stateful_set(installed.namespace).items
    if not redis["enabled"]:
        assert not statefulsets, "a Redis runs although the scenario brings its own"
        return
    name = installed.scenario.name("redis")
    core = client.CoreV1Api(kube)
    assert [s.metadata.name for s in statefulsets] == [name]
    assert statefulsets[0].status.ready_replicas == 1
    # Redis is the system of record: every write goes to the append-only file.
    files = core.read_namespaced_config_map(name, installed.namespace).data
    config = files["redis.conf"]
    assert "appendonly yes" in config.splitlines()
    # Each service as an ACL user of its own, allowed what docs/security.md says.
    assert "aclfile /run/redis/users.acl" in config.splitlines()
    assert acl_users(files["users.acl"]) == {"default": "on ~* &* +@all", **documented_acl()}
    claim = core.read_namespaced_persistent_volume_claim(f"data-{name}-0", installed.namespace)
    assert claim.status.phase == "Bound"
    pod = core.read_namespaced_pod(f"{name}-0", installed.namespace)
    images = [c.image for c in pod.spec.containers]
    assert any(image.startswith("oliver006/redis_exporter:") for image in images), images
    service = core.read_namespaced_service(name, installed.namespace)
    assert {p.name: p.port for p in service.spec.ports} == {
        "redis": 6379,
        "http-metrics": redis["exporter"]["port"],
    }

    # Redis requires the generated passwords, and each service is given its
    # own; an upgrade keeps them (the running pods would lose Redis otherwise).
    secret = core.read_namespaced_secret(name, installed.namespace)
    for key in ("password", "api-password", "controller-password", "exporter-password"):
        assert len(base64.b64decode(secret.data[key])) == 32, key
    upgrade = helm(
        "upgrade", RELEASE, str(CHART), "-n", installed.namespace,
        "-f", str(installed.scenario.path), "--wait", "--timeout", "120s",
        kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    assert core.read_namespaced_secret(name, installed.namespace).data == secret.data
    for component in ("api", "controller"):
        deployment = apps.read_namespaced_deployment(
            installed.scenario.name(component), installed.namespace
        )
        password = env_of(deployment.spec.template.spec.containers[0])["TC_REDIS_PASSWORD"]
        assert password.value_from.secret_key_ref.name == name, component
        assert password.value_from.secret_key_ref.key == f"{component}-password"
        settings = yaml.safe_load(
            core.read_namespaced_config_map(
                installed.scenario.name(component), installed.namespace
            ).data["config.yaml"]
        )
        assert settings["redis_username"] == f"tc-{component}"
    exporter = env_of(next(c for c in pod.spec.containers if c.name == "redis-exporter"))
    assert exporter["REDIS_USER"].value == "tc-exporter"
    assert exporter["REDIS_PASSWORD"].value_from.secret_key_ref.key == "exporter-password"


def test_monitoring_is_created_or_its_absence_is_told(
    cluster: Cluster, kube: client.ApiClient, installed: Installed
) -> None:
    values = installed.scenario.values
    dashboard = client.CoreV1Api(kube).read_namespaced_config_map(
        f"{RELEASE}-train-conductor-dashboard", installed.namespace
    )
    assert dashboard.metadata.labels["grafana_dashboard"] == "1"
    assert json.loads(dashboard.data["train-conductor.json"])["uid"] == "train-conductor"

    wanted = values["prometheusRule"]["enabled"] or values["api"]["serviceMonitor"]["enabled"]
    if not wanted:
        return
    groups = {g.name for g in client.ApisApi(kube).get_api_versions().groups}
    if "monitoring.coreos.com" in groups:
        listed = helm(
            "get", "manifest", RELEASE, "-n", installed.namespace, kubeconfig=cluster.kubeconfig
        )
        assert "kind: PrometheusRule" in listed.stdout
    else:
        assert "serves no\nmonitoring.coreos.com/v1 API" in installed.notes, installed.notes


def api_config(manifests: list[Manifest]) -> dict[str, Any]:
    """The API's settings file, as the chart renders it."""
    config_map = find(manifests, "ConfigMap", f"{RELEASE}-train-conductor-api")
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return config


def api_pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = find(manifests, "Deployment", f"{RELEASE}-train-conductor-api")["spec"][
        "template"
    ]["spec"]
    return spec


# upgrade from the previous version

PREVIOUS_VERSION = "0.1.0"
CHART_YAML = "helm/train-conductor/Chart.yaml"
KWOK_TOLERATIONS = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]


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
                "api": {"tolerations": KWOK_TOLERATIONS},
                "controller": {"tolerations": KWOK_TOLERATIONS},
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


# what the chart refuses


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param(["api.replicass=3"], "replicass", id="a misspelt key of the API"),
        pytest.param(
            ["controller.securityContext.readOnlyRootFileSystem=true"],
            "readOnlyRootFileSystem",
            id="a misspelt security setting that would otherwise be dropped",
        ),
        pytest.param(["redis.persistance.size=1Gi"], "persistance", id="a misspelt Redis key"),
        pytest.param(["api.grpc.port=70000"], "/api/grpc/port", id="a port out of range"),
        pytest.param(["redis.appendfsync=sometimes"], "appendfsync", id="a value off its list"),
        pytest.param(["api.image.repository="], "/api/image/repository", id="no API image"),
        pytest.param(
            ["api.drainSeconds=40"],
            "terminationGracePeriodSeconds",
            id="a grace period shorter than the drain",
        ),
        pytest.param(["auth.modes={tokenreview}"], "/auth/modes", id="a misspelt auth mode"),
        pytest.param(["auth.modes=null"], "modes", id="no auth mode"),
        pytest.param(["auth.rateLimit.createPerSecnd=1"], "createPerSecnd", id="a misspelt limit"),
        pytest.param(
            ["auth.tokenReveiw.audience=x"], "tokenReveiw", id="a misspelt token-review key"
        ),
        pytest.param(["api.tls.enable=true"], "enable", id="a misspelt TLS key"),
        pytest.param(
            ["auth.modes={none,token-review}"],
            "none can not be combined",
            id="none beside another mode",
        ),
        pytest.param(
            ["auth.modes={static-token}"],
            "auth.staticTokens.existingSecret",
            id="static tokens without their Secret",
        ),
        pytest.param(
            ["auth.modes={mtls}", "api.tls.enabled=true", "api.tls.secretName=tls"],
            "api.tls.clientCA",
            id="mtls without a client CA",
        ),
        pytest.param(["api.tls.enabled=true"], "api.tls.secretName", id="TLS without a Secret"),
        pytest.param(["api.tls.clientCA=true"], "api.tls.enabled", id="mTLS without TLS"),
        pytest.param(
            ["redis.enabled=true", "redis.users.api.username=me"],
            "redis.users.api",
            id="a user of your own Redis given to the bundled one",
        ),
        pytest.param(
            ["redis.url=redis://:hunter2@redis:6379/0"],
            "redis.url carries a password",
            id="a password in the Redis URL, which would land in a ConfigMap",
        ),
        pytest.param(
            ["api.resources.requests.memory=128ki"],
            "/api/resources/requests/memory",
            id="a quantity Kubernetes would refuse",
        ),
        pytest.param(
            ["api.pdb.minAvailable=2"], "api.pdb.minAvailable", id="a budget no eviction can meet"
        ),
        pytest.param(
            ["controller.serviceAccount.create=false"],
            "controller.serviceAccount.name",
            id="the controller's rights bound to the default ServiceAccount",
        ),
        pytest.param(
            ["fullnameOverride=" + "x" * 37],
            "fullnameOverride",
            id="a name too long to derive from",
        ),
        pytest.param(
            ["prometheusRule.enabled=true"],
            "serviceMonitor",
            id="alerts on job names no ServiceMonitor gives",
        ),
    ],
)
def test_a_wrong_value_fails_the_install_naming_it(values: list[str], named: str) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", RELEASE, str(CHART), *ALLOW_NONE, *sets)
    assert result.returncode != 0, "the chart accepted it"
    assert named in result.stderr, result.stderr


def test_an_image_tag_given_as_a_number_is_refused_not_rounded() -> None:
    # YAML reads `tag: 1.10` as the number 1.1, which would name another image.
    result = helm("template", RELEASE, str(CHART), "--set-json", "api.image.tag=1.10")
    assert result.returncode != 0, "the chart accepted it"
    assert "/api/image/tag" in result.stderr, result.stderr


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


def api_prestop(manifests: list[Manifest]) -> list[str] | None:
    """The command of the API container's preStop hook, if it has one."""
    deployment = find(manifests, "Deployment", f"{RELEASE}-train-conductor-api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    hook = container.get("lifecycle", {}).get("preStop")
    return None if hook is None else list(hook["exec"]["command"])


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


@pytest.mark.parametrize(
    "mode", [("--set", "auth.modes={none}"), ("--set", "auth.mode=none")], ids=["modes", "mode"]
)
def test_auth_none_needs_consent(mode: tuple[str, str]) -> None:
    result = helm("template", RELEASE, str(CHART), *mode)
    assert result.returncode != 0
    assert "auth.allowInsecureNone=true" in result.stderr, result.stderr
    config = api_config(render(*mode, *ALLOW_NONE))
    assert config["auth_modes"] == ["none"]
    assert "auth_mode" not in config


def test_the_default_identifies_callers_by_their_service_account_tokens() -> None:
    config = api_config(render())
    assert config["auth_modes"] == ["token-review"]
    assert config["token_review_audience"] == "train-conductor"
    # Production limits, on unless turned off.
    assert config["create_rate_per_second"] > 0
    assert config["create_burst"] >= 1
    assert config["max_active_trainings_per_owner"] > 0


# what the chart renders


def test_monitoring_renders_where_the_prometheus_operator_is(scenario: Scenario) -> None:
    apis = [arg for api in MONITORING_APIS for arg in ("--api-versions", api)]
    values = scenario.values
    manifests = render("-f", str(scenario.path), *apis)
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for component in ("api", "controller"):
        monitored = ("ServiceMonitor", scenario.name(component)) in kinds
        assert monitored == values[component]["serviceMonitor"]["enabled"], component
        if monitored:
            # What the operator scrapes: the named port of every Service
            # whose labels the monitor selects. Exactly one Service per
            # component, and for the API the in-cluster headless one, never
            # the Service that may face outside.
            monitor = find(manifests, "ServiceMonitor", scenario.name(component))
            port = monitor["spec"]["endpoints"][0]["port"]
            wanted = monitor["spec"]["selector"]["matchLabels"].items()
            scraped = [
                m["metadata"]["name"]
                for m in manifests
                if m["kind"] == "Service"
                and wanted <= m["metadata"]["labels"].items()
                and port in {p["name"] for p in m["spec"]["ports"]}
            ]
            name = scenario.name(component)
            assert scraped == [f"{name}-headless" if component == "api" else name], component
            # The job label its series get (the Service's name unless
            # relabelled) is the one the alerts select.
            job = next(
                (
                    r["replacement"]
                    for r in monitor["spec"]["endpoints"][0].get("relabelings", [])
                    if r.get("targetLabel") == "job"
                ),
                scraped[0],
            )
            assert job == name, component
            if values["prometheusRule"]["enabled"]:
                rule = find(manifests, "PrometheusRule", f"{RELEASE}-train-conductor")
                assert f'job="{job}"' in json.dumps(rule["spec"]).replace('\\"', '"'), component
    if values["prometheusRule"]["enabled"]:
        rule = find(manifests, "PrometheusRule", f"{RELEASE}-train-conductor")
        alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
        assert alerts >= {
            "TrainConductorAPIDown",
            "TrainConductorAPINoHealthyReplicas",
            "TrainConductorGrpcErrors",
            "TrainConductorControllerNoLeader",
            "TrainConductorReconcileErrors",
            "TrainConductorWorkQueueBacklog",
            "TrainConductorChangeFeedLag",
            "TrainConductorTrainingsStuckQueued",
        }
    without = {m["kind"] for m in render("-f", str(scenario.path))}
    assert not without & {"ServiceMonitor", "PrometheusRule"}


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


@pytest.mark.parametrize(
    ("modes", "token_review"),
    [
        pytest.param(("--set", "auth.modes={token-review}"), True, id="token-review"),
        pytest.param(
            ("--set", "auth.modes={static-token,token-review}", *STATIC_TOKENS), True,
            id="beside static-token",
        ),
        pytest.param(("--set", "auth.modes={static-token}", *STATIC_TOKENS), False,
                     id="static-token"),
        pytest.param(NONE, False, id="none"),
    ],
)  # fmt: skip
def test_the_api_gets_a_token_and_the_auth_delegator_role_only_with_token_review(
    modes: tuple[str, ...], token_review: bool
) -> None:
    for account in ("", "tc-api"):
        named = ("--set", f"api.serviceAccount.name={account}") if account else ()
        manifests = render(*modes, *named)
        api = f"{RELEASE}-train-conductor-api"
        bindings = [m for m in manifests if m["kind"] == "ClusterRoleBinding"]
        assert api_pod_spec(manifests)["automountServiceAccountToken"] is token_review
        assert (
            find(manifests, "ServiceAccount", account or api)["automountServiceAccountToken"]
            is token_review
        )
        if not token_review:
            assert not bindings
            continue
        # Cluster-wide: two releases of the same name in two namespaces get two.
        assert [b["metadata"]["name"] for b in bindings] == [f"{api}-tc-system-auth-delegator"]
        assert bindings[0]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:auth-delegator",
        }
        assert bindings[0]["subjects"] == [
            {"kind": "ServiceAccount", "name": account or api, "namespace": "tc-system"}
        ]


def test_static_tokens_are_mounted_from_their_secret_as_a_file() -> None:
    manifests = render(
        "--set", "auth.modes={static-token}",
        "--set", "auth.staticTokens.existingSecret=api-tokens",
        "--set", "auth.staticTokens.key=tokens.txt",
    )  # fmt: skip
    spec = api_pod_spec(manifests)
    volume = next(v for v in spec["volumes"] if v["name"] == "static-tokens")
    assert volume["secret"] == {
        "secretName": "api-tokens",
        "items": [{"key": "tokens.txt", "path": "tokens"}],
    }
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "static-tokens")
    # A directory, not a subPath: the kubelet updates it when the Secret changes.
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    assert api_config(manifests)["static_tokens_file"] == f"{mount['mountPath']}/tokens"
    assert "static-tokens" not in {v["name"] for v in api_pod_spec(render())["volumes"]}


@pytest.mark.parametrize("client_ca", [False, True], ids=["tls", "mtls"])
def test_tls_mounts_the_secret_and_names_its_files(client_ca: bool) -> None:
    sets = ["api.tls.enabled=true", "api.tls.secretName=tc-api-tls"]
    if client_ca:
        sets += ["api.tls.clientCA=true", "auth.modes={mtls,token-review}"]
    manifests = render(*(arg for value in sets for arg in ("--set", value)))
    spec = api_pod_spec(manifests)
    container = spec["containers"][0]
    volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    files = ["tls.crt", "tls.key", *(["ca.crt"] if client_ca else [])]
    assert volume["secret"] == {
        "secretName": "tc-api-tls",
        "items": [{"key": f, "path": f} for f in files],
    }
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    config = api_config(manifests)
    directory = mount["mountPath"]
    assert config["tls_cert_file"] == f"{directory}/tls.crt"
    assert config["tls_key_file"] == f"{directory}/tls.key"
    assert config.get("tls_client_ca_file") == (f"{directory}/ca.crt" if client_ca else None)
    # The kubelet's gRPC probe can not speak TLS.
    assert container["readinessProbe"]["tcpSocket"] == {"port": "grpc"}
    assert "grpc" not in container["readinessProbe"]

    plain = api_pod_spec(render())["containers"][0]
    assert plain["readinessProbe"]["grpc"]["service"] == "trainconductor.v1.TrainingService"
    assert "tls" not in {m["name"] for m in plain["volumeMounts"]}


@pytest.mark.parametrize("component", ["api", "controller"])
def test_the_collector_sidecar_is_probed_on_its_health_check(component: str) -> None:
    manifests = render(
        "--set", f"{component}.otelCollector.enabled=true",
        "--set", f"{component}.otelCollector.config.service.extensions={{zpages}}",
        "--set", f"{component}.otelCollector.config.extensions.zpages.endpoint=127.0.0.1:55679",
    )  # fmt: skip
    name = f"{RELEASE}-train-conductor-{component}"
    config = yaml.safe_load(find(manifests, "ConfigMap", name)["data"]["otel-collector.yaml"])
    # The operator's extensions stay; health_check joins them.
    assert config["service"]["extensions"] == ["zpages", "health_check"]
    assert config["extensions"]["zpages"] == {"endpoint": "127.0.0.1:55679"}
    port = int(config["extensions"]["health_check"]["endpoint"].rpartition(":")[2])
    spec = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
    sidecar = next(c for c in spec["containers"] if c["name"] == "otel-collector")
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert ports[sidecar[probe]["httpGet"]["port"]] == port, probe
    assert sidecar["resources"]["requests"]
    assert sidecar["resources"]["limits"]["memory"]


@pytest.mark.parametrize("component", ["api", "controller"])
def test_traces_are_sampled_at_the_chosen_ratio_when_they_are_exported(component: str) -> None:
    def tracing_env(*args: str) -> dict[str, str]:
        name = f"{RELEASE}-train-conductor-{component}"
        spec = find(render(*args), "Deployment", name)["spec"]["template"]["spec"]
        container = next(c for c in spec["containers"] if c["name"] == component)
        return {e["name"]: e.get("value") for e in container["env"] if e["name"].startswith("OTEL")}

    assert tracing_env() == {}  # no exporter, no tracing
    on = f"{component}.otelCollector.enabled=true"
    assert tracing_env("--set", on) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_SERVICE_NAME": f"trainconductor-{component}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    everything = tracing_env("--set", on, "--set", "tracing.sampleRatio=1")
    assert everything["OTEL_TRACES_SAMPLER_ARG"] == "1"
    with pytest.raises(AssertionError, match="sampleRatio"):
        render("--set", "tracing.sampleRatio=2")


def test_the_bundled_redis_users_are_those_of_the_security_page() -> None:
    manifests = render("--set", "redis.enabled=true", "--set", "redis.keyPrefix=tc-a*:")
    redis_files = find(manifests, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    documented = {
        user: rules.replace("~tc:*", "~tc-a\\*:*") for user, rules in documented_acl().items()
    }
    assert acl_users(redis_files["users.acl"]) == {"default": "on ~* &* +@all", **documented}
    # No password in the ConfigMap: start.sh adds them from the Secret.
    assert ">" not in redis_files["users.acl"]
    assert "#" not in redis_files["users.acl"]

    without_exporter = render(
        "--set", "redis.enabled=true", "--set", "redis.exporter.enabled=false"
    )
    files = find(without_exporter, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    assert "tc-exporter" not in acl_users(files["users.acl"])

    # Without passwords, no users either: the NetworkPolicy is the only guard.
    open_redis = render("--set", "redis.enabled=true", "--set", "redis.auth.enabled=false")
    files = find(open_redis, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    assert "users.acl" not in files
    assert "aclfile" not in files["redis.conf"]
    assert not [m for m in open_redis if m["kind"] == "Secret"]


def test_the_bundled_redis_starts_with_its_users_and_their_passwords(tmp_path: Path) -> None:
    """The chart's start.sh and users.acl, run with a real redis-server: each
    user signs in with the password of its Secret key and may do only its part."""
    manifests = render("--set", "redis.enabled=true")
    files = find(manifests, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    secret = find(manifests, "Secret", f"{RELEASE}-train-conductor-redis")["data"]
    passwords = {key: base64.b64decode(value).decode() for key, value in secret.items()}
    statefulset = find(manifests, "StatefulSet", f"{RELEASE}-train-conductor-redis")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: passwords[e["valueFrom"]["secretKeyRef"]["key"]] for e in container["env"]}
    assert container["command"] == ["sh", "/etc/redis/start.sh"]
    port = free_port()
    (tmp_path / "run").mkdir()
    for name, text in files.items():
        text = text.replace("/etc/redis/", f"{tmp_path}/").replace(
            "/run/redis/", f"{tmp_path}/run/"
        )
        text = text.replace("dir /data", f"dir {tmp_path}").replace("port 6379", f"port {port}")
        (tmp_path / name).write_text(text.replace("bind 0.0.0.0 -::*", "bind 127.0.0.1"))
    server = subprocess.Popen(
        ["sh", str(tmp_path / "start.sh")],
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def connect(user: str | None, password: str | None) -> Any:
            return redis.Redis(
                port=port, username=user, password=password, socket_timeout=5, decode_responses=True
            )

        wait_for("Redis to answer", lambda: _pong(connect(None, env["REDIS_PASSWORD"])))
        acl = (tmp_path / "run" / "users.acl").read_text()
        assert oct((tmp_path / "run" / "users.acl").stat().st_mode & 0o777) == "0o600"
        for password in passwords.values():
            assert password not in acl
            assert hashlib.sha256(password.encode()).hexdigest() in acl

        with pytest.raises(redis.AuthenticationError):
            connect(None, None).ping()
        api = connect("tc-api", env["REDIS_API_PASSWORD"])
        assert api.set("tc:x", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            api.set("elsewhere", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            api.flushall()
        controller = connect("tc-controller", env["REDIS_CONTROLLER_PASSWORD"])
        assert controller.zcard("tc:phase") == 0
        with pytest.raises(redis.AuthenticationError):
            connect("tc-controller", env["REDIS_API_PASSWORD"]).ping()
        exporter = connect("tc-exporter", env["REDIS_EXPORTER_PASSWORD"])
        assert exporter.info()["redis_version"]
        # The memory it may take (redis.maxmemory, 768mb), and what Train
        # Conductor asks of it.
        assert exporter.config_get("maxmemory") == {"maxmemory": str(768 * 1024 * 1024)}
        for name, value in REDIS_CONFIG.items():
            assert exporter.config_get(name) == {name: value}
        assert exporter.slowlog_len() >= 0
        exporter.execute_command("CLIENT", "SETNAME", "redis_exporter")
        exporter.execute_command("LATENCY", "LATEST")
        with pytest.raises(redis.exceptions.NoPermissionError):
            exporter.get("tc:x")
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "start.sh" not in errors, errors


def _pong(connection: Any) -> bool:
    try:
        return bool(connection.ping())
    except redis.ConnectionError:
        return False


def pod_environment(manifests: list[Manifest], component: str, config_file: Path) -> dict[str, str]:
    """The environment the chart gives a service's container, its config file written out."""
    name = f"{RELEASE}-train-conductor-{component}"
    config_file.write_text(find(manifests, "ConfigMap", name)["data"]["config.yaml"])
    container = find(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env["TC_CONFIG_FILE"] = str(config_file)
    return env


def loaded_settings(module: str, cls: str, env: dict[str, str]) -> dict[str, Any]:
    """The settings a service loads at start, in a process of its own."""
    code = f"from {module} import {cls}; print({cls}().model_dump_json())"
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env},
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"{cls} refused the chart's settings:\n{result.stderr}"
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


def test_the_services_accept_the_settings_the_chart_renders(
    scenario: Scenario, tmp_path: Path
) -> None:
    values = scenario.values
    manifests = render("-f", str(scenario.path), "--namespace", "tc-system")

    api_env = pod_environment(manifests, "api", tmp_path / "api.yaml")
    api = loaded_settings("trainconductor_api.settings", "ApiSettings", api_env)
    assert api["grpc_port"] == values["api"]["grpc"]["port"]
    assert api["http_port"] == values["api"]["metrics"]["port"]
    assert api["max_connection_age_seconds"] == values["api"]["grpc"]["maxConnectionAgeSeconds"]
    assert api["drain_seconds"] < values["api"]["terminationGracePeriodSeconds"]
    auth = values["auth"]
    assert api["auth_modes"] == scenario.auth_modes
    assert api["auth_mode"] is None, "the chart writes auth_modes, not the deprecated auth_mode"
    assert api["token_review_audience"] == auth["tokenReview"]["audience"]
    assert api["admin_groups"] == auth["adminGroups"]
    assert api["create_rate_per_second"] == auth["rateLimit"]["createPerSecond"]
    assert api["create_burst"] == auth["rateLimit"]["burst"]
    assert api["max_active_trainings_per_owner"] == auth["maxActiveTrainingsPerOwner"]
    # Files the API reads are where the pod mounts them.
    mounts = {
        m["name"]: m["mountPath"]
        for m in find(manifests, "Deployment", scenario.name("api"))["spec"]["template"]["spec"][
            "containers"
        ][0]["volumeMounts"]
    }
    if values["api"]["tls"]["enabled"]:
        assert Path(api["tls_cert_file"]).parent == Path(mounts["tls"])
        assert Path(api["tls_key_file"]).parent == Path(mounts["tls"])
    else:
        assert api["tls_cert_file"] is None
    if "static-token" in scenario.auth_modes:
        assert Path(api["static_tokens_file"]).parent == Path(mounts["static-tokens"])

    env = pod_environment(manifests, "controller", tmp_path / "controller.yaml")
    controller = loaded_settings("trainconductor_controller.settings", "ControllerSettings", env)
    training = values["training"]
    assert controller["namespace"] == (training["namespace"] or "tc-system")
    assert controller["lease_namespace"] == "tc-system"
    assert controller["image"] == f"{training['image']['repository']}:{training['image']['tag']}"
    assert controller["command"] == training["command"]
    assert controller["tolerations"] == training["tolerations"]
    assert [v["claim_name"] for v in controller["volumes"]] == [
        v["claimName"] for v in training["volumes"]
    ]
    assert controller["ttl_seconds_after_finished"] == training["ttlSecondsAfterFinished"]
    retention = values["retention"]
    assert controller["retention_seconds"] == retention["seconds"]
    assert controller["retention_tombstone_seconds"] == retention["tombstoneSeconds"]
    assert controller["retention_interval_seconds"] == retention["intervalSeconds"]
    assert controller["retention_batch"] == retention["batch"]
    assert controller["retention_rate_per_second"] == retention["ratePerSecond"]
    assert controller["finished_events_kept"] == retention["finishedEventsKept"]
    assert controller["redis_url"] == api["redis_url"]
    assert controller["redis_sentinels"] == values["redis"]["sentinel"]["hosts"]
    # The Sentinels' password, from its Secret, where they ask for one.
    sentinel = values["redis"]["sentinel"]
    for component in ("api", "controller"):
        container = find(manifests, "Deployment", scenario.name(component))["spec"]["template"][
            "spec"
        ]["containers"][0]
        refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
        if sentinel["hosts"] and sentinel["existingSecret"]:
            assert refs["TC_REDIS_SENTINEL_PASSWORD"] == {
                "name": sentinel["existingSecret"],
                "key": sentinel["existingSecretPasswordKey"],
            }, component
        else:
            assert "TC_REDIS_SENTINEL_PASSWORD" not in refs, component
    # Each service as its own Redis user, where there is one per service.
    redis_values = values["redis"]
    for component, loaded in (("api", api), ("controller", controller)):
        if redis_values["enabled"]:
            expected = f"tc-{component}" if redis_values["auth"]["enabled"] else None
        else:
            user = redis_values["users"][component]
            expected = user["username"] or redis_values["username"] or None
        assert loaded["redis_username"] == expected, component


# the services, with what the chart gives them


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


def test_the_controller_leads_and_creates_jobs_with_the_charts_rbac_and_config(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The chart's pods are fakes here; the same settings and the same
    ServiceAccounts in real processes show that they work together: the
    controller with its Roles, the API reviewing callers' tokens with its
    binding to system:auth-delegator."""
    scenario = Scenario(CHART / "ci" / "default-values.yaml")
    assert scenario.auth_modes == ["token-review"]
    result = helm(
        "install", RELEASE, str(CHART), "-n", namespace, "-f", str(scenario.path),
        "--wait", "--timeout", "120s", kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifests = render("-f", str(scenario.path), "--namespace", namespace)
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    services: list[Service] = []
    try:
        overrides = {"TC_REDIS_URL": redis_server.url, "TC_GRPC_HOST": "127.0.0.1"}
        api_port, api_http, controller_http = free_port(), free_port(), free_port()
        api_kubeconfig = service_account_kubeconfig(
            cluster, kube, namespace, scenario.service_account("api"), tmp_path / "api.kubeconfig"
        )
        api_env = pod_environment(manifests, "api", tmp_path / "api.yaml")
        api_env |= overrides | {
            "TC_GRPC_PORT": str(api_port),
            "TC_HTTP_PORT": str(api_http),
            "TC_KUBECONFIG": str(api_kubeconfig),
        }
        api = Service("api", "trainconductor_api.main", api_env, tmp_path)
        services.append(api.start())

        account = scenario.service_account("controller")
        kubeconfig = service_account_kubeconfig(
            cluster, kube, namespace, account, tmp_path / "controller.kubeconfig"
        )
        identity = f"local-{uuid.uuid4().hex[:6]}"
        env = pod_environment(manifests, "controller", tmp_path / "controller.yaml")
        env |= overrides | {
            "TC_KUBECONFIG": str(kubeconfig),
            "TC_HTTP_PORT": str(controller_http),
            "TC_IDENTITY": identity,
        }
        controller = Service("controller", "trainconductor_controller.main", env, tmp_path)
        services.append(controller.start())
        controller.wait_http_ok(f"http://127.0.0.1:{controller_http}/readyz")
        api.wait_http_ok(f"http://127.0.0.1:{api_http}/metrics")

        lease = client.CoordinationV1Api(kube)
        name = scenario.name("controller")
        wait_for(
            "the controller to hold the chart's Lease",
            lambda: _holder(lease, name, namespace) == identity,
            timeout=30,
        )
        # A caller in the cluster: its ServiceAccount's token for the API's audience.
        client.CoreV1Api(kube).create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="ml-user"))
        )
        audience = scenario.values["auth"]["tokenReview"]["audience"]
        token = service_account_token(kube, namespace, "ml-user", [audience])
        for_apiserver = service_account_token(kube, namespace, "ml-user", [])
        with grpc.insecure_channel(f"127.0.0.1:{api_port}") as channel:
            stub = pb_grpc.TrainingServiceStub(channel)
            request = pb.CreateTrainingRequest(spec=lora_spec())
            for refused in ((), (("authorization", f"Bearer {for_apiserver}"),)):
                with pytest.raises(grpc.RpcError) as raised:
                    stub.CreateTraining(request, metadata=refused, timeout=10)
                assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED, raised.value
            bearer = (("authorization", f"Bearer {token}"),)
            training = stub.CreateTraining(request, metadata=bearer, timeout=10).training
        assert training.owner == f"system:serviceaccount:{namespace}:ml-user"
        batch = client.BatchV1Api(kube)
        jobs = wait_for(
            f"a Job for training {training.id}",
            lambda: (
                batch.list_namespaced_job(
                    namespace, label_selector="app.kubernetes.io/managed-by=train-conductor"
                ).items
            ),
            timeout=30,
        )
        assert jobs[0].spec.template.spec.containers[0].image == (
            f"{scenario.values['training']['image']['repository']}:"
            f"{scenario.values['training']['image']['tag']}"
        )
    except BaseException:
        for service in services:
            print(f"--- {service.name} ---\n{service.log_tail()}")
        raise
    finally:
        for service in services:
            service.stop()
        redis_server.stop()
        helm("uninstall", RELEASE, "-n", namespace, kubeconfig=cluster.kubeconfig)


def _holder(api: client.CoordinationV1Api, name: str, namespace: str) -> str | None:
    try:
        holder: str | None = api.read_namespaced_lease(name, namespace).spec.holder_identity
        return holder
    except client.ApiException:
        return None
