"""The services in processes of their own, run with what the chart gives
them (its settings, its ServiceAccounts and their rights) against the real
control plane."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from devstack.stack import Cluster
from devstack.waiting import wait_for
from tests.support.chart import CHART, RELEASE, Scenario, helm, pod_environment, render
from tests.support.chart_release import service_account_kubeconfig, service_account_token


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
