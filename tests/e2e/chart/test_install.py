"""Each ci/*-values.yaml scenario installed with `helm install --wait` on the
real control plane: what runs, what its accounts may do, and that an
uninstall leaves nothing of it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from devstack.stack import Cluster
from tests.support.chart import CHART, RELEASE, SCENARIOS, Scenario, find, helm
from tests.support.chart_release import kubectl, release_manifests, uninstall_leaves, what_runs
from tests.support.redis_acl import acl_users, documented_acl

# The controller's rights on Kueue's objects, with queues: (apiGroup,
# resource, name) -> verbs in its Role; in its ClusterRole; and as
# `kubectl auth can-i --list` prints them.
KUEUE_RULES = {
    ("kueue.x-k8s.io", "workloads", "*"): {"get", "list", "patch", "watch"},
    ("kueue.x-k8s.io", "localqueues", "*"): {"get", "list", "watch"},
    ("visibility.kueue.x-k8s.io", "localqueues/pendingworkloads", "*"): {"get"},
}
PRIORITY_RULES = {("kueue.x-k8s.io", "workloadpriorityclasses", "*"): {"get", "list"}}
KUEUE_GRANTS = {
    ("workloads.kueue.x-k8s.io", "[]", "[get list patch watch]"),
    ("localqueues.kueue.x-k8s.io", "[]", "[get list watch]"),
    ("localqueues.visibility.kueue.x-k8s.io/pendingworkloads", "[]", "[get]"),
}
PRIORITY_GRANT = ("workloadpriorityclasses.kueue.x-k8s.io", "[]", "[get list]")


# what the scenario needs of the operator


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


# what Kubernetes makes of the accounts' rights


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


def env_of(container: Any) -> dict[str, Any]:
    return {e.name: e for e in container.env or []}


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


# installed


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    found: Scenario = request.param
    return found


@dataclass
class Installed:
    scenario: Scenario
    namespace: str
    notes: str


@pytest.fixture
def installed(
    request: pytest.FixtureRequest,
    cluster: Cluster,
    kube: client.ApiClient,
    namespace: str,
    scenario: Scenario,
) -> Iterator[Installed]:
    if scenario.queues:
        # Installed where Kueue runs, as the scenario's operator would.
        request.getfixturevalue("kueue")
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
    # gRPC only (and progress reports' own ports, when on): the
    # metrics stay inside the cluster even when this Service is made a
    # LoadBalancer.
    progress = installed.scenario.values["progress"]
    served = (
        {"kubeflow-status": progress["kubeflow"]["port"]} if progress["kubeflow"]["enabled"] else {}
    )
    if progress["port"]:
        served["grpc-progress"] = progress["port"]
    assert {p.name: p.port for p in service.spec.ports} == {
        "grpc": values["grpc"]["port"],
        **served,
    }

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
    queues = installed.scenario.queues
    assert rules_of(jobs_role) == {
        ("batch", "jobs", "*"): {"create", "delete", "get", "list", "patch", "watch"},
        ("", "pods", "*"): {"get", "list", "watch"},
        ("", "services", "*"): {"create", "list", "watch"},
        ("", "events", "*"): {"list", "watch"},
        **({("", "pods/log", "*"): {"get"}} if installed.scenario.keeps_logs else {}),
        **(KUEUE_RULES if queues else {}),
    }
    priorities = f"{name}-{installed.namespace}-queue-priorities"
    released = rbac.list_cluster_role(label_selector=f"app.kubernetes.io/instance={RELEASE}")
    cluster_roles = {
        role.metadata.name: rules_of(role)
        for role in released.items
        if role.metadata.name.startswith(name)
    }
    assert cluster_roles == ({priorities: PRIORITY_RULES} if queues else {})
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
    kueue = "kueue.x-k8s.io"
    assert allowed(kube, user, "patch", "workloads", ns, group=kueue) is queues
    assert allowed(kube, user, "list", "workloadpriorityclasses", ns, group=kueue,
                   cluster_wide=True) is queues  # fmt: skip
    assert not allowed(kube, user, "update", "workloads", ns, group=kueue)
    assert not allowed(kube, user, "delete", "workloads", ns, group=kueue)
    assert not allowed(kube, user, "patch", "localqueues", ns, group=kueue)
    assert not allowed(kube, user, "patch", "clusterqueues", ns, group=kueue, cluster_wide=True)
    assert not allowed(kube, user, "get", "workloads", "kube-system", group=kueue)

    api_user = f"system:serviceaccount:{ns}:{installed.scenario.service_account('api')}"
    assert not allowed(kube, api_user, "list", "jobs", ns, group="batch")


def test_api_may_review_tokens_only_with_token_review_or_progress_reports(
    kube: client.ApiClient, installed: Installed
) -> None:
    """token-review, or progress reports by the pods' tokens: the API's
    account is bound to system:auth-delegator, and may get pods where the
    trainings run for the reports; otherwise no binding, no Kubernetes
    permission."""
    ns = installed.namespace
    account = installed.scenario.service_account("api")
    api_user = f"system:serviceaccount:{ns}:{account}"
    bindings = [
        b
        for b in client.RbacAuthorizationV1Api(kube)
        .list_cluster_role_binding(label_selector="app.kubernetes.io/instance=tc")
        .items
        if any(s.namespace == ns and s.name == account for s in b.subjects or [])
    ]
    if installed.scenario.reviews_tokens:
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
    assert may_review == installed.scenario.reviews_tokens
    assert not allowed(kube, api_user, "get", "secrets", ns)
    assert not allowed(kube, api_user, "list", "pods", ns, cluster_wide=True)
    training = installed.scenario.values["training"]["namespace"] or ns
    logs = installed.scenario.pod_logs
    assert allowed(kube, api_user, "get", "pods", training) == (
        installed.scenario.progress_reports or logs
    )
    assert allowed(kube, api_user, "list", "pods", training) == logs
    assert not allowed(kube, api_user, "watch", "pods", training)
    assert not allowed(kube, api_user, "get", "pods", "kube-system")


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
            *((controller, ("get", "pods/log", "-n", training)),) * scenario.keeps_logs,
            *((api, (verb, "pods", "-n", training)) for verb in ("get", "list")
              if scenario.pod_logs),
            *((api, ("get", "pods/log", "-n", training)),) * scenario.pod_logs,
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
            *((api, ("list", "pods", "-n", ns)),) * (training != ns or not scenario.pod_logs),
            (api, ("watch", "pods", "-n", training)),
            (api, ("delete", "pods", "-n", training)),
            (api, ("create", "pods/exec", "-n", training)),
            (api, ("get", "pods/log", "-n", "kube-system")),
            (controller, ("create", "pods/exec", "-n", training)),
            *((controller, ("get", "pods/log", "-n", training)),) * (not scenario.keeps_logs),
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
    pods: set[Grant] = set()
    if scenario.pod_logs:  # can-i --list merges progress' get into it
        pods = {("pods", "[]", "[get list]"), ("pods/log", "[]", "[get]")}
    elif scenario.progress_reports:
        pods = {("pods", "[]", "[get]")}
    api_grants = reviews if scenario.reviews_tokens else set()
    assert granted(cluster, api, ns) - baseline == api_grants | (pods if training == ns else set())
    if training != ns:
        assert granted(cluster, api, training) - baseline == api_grants | pods
    assert can_i(cluster, api, "create", "tokenreviews.authentication.k8s.io") is (
        scenario.reviews_tokens
    )
    work = {
        ("jobs.batch", "[]", "[create delete get list patch watch]"),
        ("pods", "[]", "[get list watch]"),
        ("services", "[]", "[create list watch]"),
        ("events", "[]", "[list watch]"),
    }
    if scenario.keeps_logs:
        work.add(("pods/log", "[]", "[get]"))
    if scenario.queues:
        work |= KUEUE_GRANTS
    election = {(leases, "[]", "[create]"), (leases, f"[{lease}]", "[get update]")}
    # The priorities are cluster-wide: can-i --list shows them in every namespace.
    everywhere = {PRIORITY_GRANT} if scenario.queues else set()
    expected = (
        {ns: work | election | everywhere}
        if training == ns
        else {training: work | everywhere, ns: election | everywhere}
    )
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


def test_api_pods_carry_a_token_only_with_token_review_or_progress_reports(
    kube: client.ApiClient, installed: Installed
) -> None:
    core = client.CoreV1Api(kube)
    token_review = installed.scenario.api_uses_kubernetes
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


def test_the_notes_tell_how_to_use_the_queues_only_with_queues(installed: Installed) -> None:
    notes, queues = installed.notes, installed.scenario.values["queues"]
    assert ("tcctl list --queue QUEUE" in notes) is queues["enabled"], notes
    if queues["enabled"]:
        where = f"Kueue's LocalQueues of {installed.namespace} ({queues['defaultQueue']} unless"
        assert where in notes, notes
