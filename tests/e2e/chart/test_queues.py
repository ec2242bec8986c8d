"""The chart's queues scenario (ci/queues-values.yaml) where Kueue runs: the
services in processes of their own with its settings and as its accounts,
so that what they do with Kueue's objects is what the chart's RBAC lets
them do. A training that names no queue gets its owner's group's queue and
the default priority, waits with its place read from Kueue's visibility
API, is held and released through its Workload, and runs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.kueue import Kueue
from devstack.ports import free_port
from devstack.processes import Service
from devstack.queues import apply, cluster_queue, drain, local_queue
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from devstack.stack import Cluster
from devstack.waiting import wait_for
from tests.support.chart import CHART, RELEASE, Scenario, helm, pod_environment, render
from tests.support.chart_release import service_account_kubeconfig, service_account_token

SCENARIO = Scenario(CHART / "ci" / "queues-values.yaml")


@dataclass
class Released:
    """The scenario installed, its services running as its accounts."""

    namespace: str
    queue: str
    priority: str
    trainings: pb_grpc.TrainingServiceStub
    bearer: tuple[tuple[str, str], ...]
    controller: Service

    def get(self, training_id: str) -> pb.Training:
        request = pb.GetTrainingRequest(id=training_id)
        return self.trainings.GetTraining(request, metadata=self.bearer, timeout=10).training


@pytest.fixture
def released(
    cluster: Cluster,
    kube: client.ApiClient,
    kueue: Kueue,
    kueue_namespace: str,
    priorities: dict[str, str],
    tmp_path: Path,
) -> Iterator[Released]:
    namespace = kueue_namespace
    queue = f"team-{uuid.uuid4().hex[:6]}"
    # Owners of the namespace's ServiceAccounts go to `queue`; anyone else
    # to a queue that does not exist.
    overrides = (
        "--set", f"queues.defaultQueue=nowhere-{queue}",
        "--set", f"queues.defaultPriority={priorities['low']}",
        "--set-json", "queues.groupDefaults=" + json.dumps(
            [{"group": f"system:serviceaccounts:{namespace}", "queue": queue}]
        ),
    )  # fmt: skip
    result = helm(
        "install", RELEASE, str(CHART), "-n", namespace, "-f", str(SCENARIO.path), *overrides,
        "--wait", "--timeout", "120s", kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifests = render("-f", str(SCENARIO.path), "--namespace", namespace, *overrides)
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    services: list[Service] = []
    try:
        apply(kueue.kube, cluster_queue(queue, gpus=0))
        apply(kueue.kube, local_queue(queue, namespace, queue))
        common = {"TC_REDIS_URL": redis_server.url}
        api_port, api_http, controller_http = free_port(), free_port(), free_port()
        api_env = pod_environment(manifests, "api", tmp_path / "api.yaml") | common
        api_env |= {
            "TC_GRPC_HOST": "127.0.0.1",
            "TC_GRPC_PORT": str(api_port),
            "TC_HTTP_PORT": str(api_http),
            "TC_KUBECONFIG": str(service_account_kubeconfig(
                cluster, kube, namespace, SCENARIO.service_account("api"),
                tmp_path / "api.kubeconfig",
            )),
        }  # fmt: skip
        api = Service("api", "trainconductor_api.main", api_env, tmp_path)
        services.append(api.start())
        env = pod_environment(manifests, "controller", tmp_path / "controller.yaml") | common
        env |= {
            "TC_KUBECONFIG": str(service_account_kubeconfig(
                cluster, kube, namespace, SCENARIO.service_account("controller"),
                tmp_path / "controller.kubeconfig",
            )),
            "TC_HTTP_PORT": str(controller_http),
            "TC_IDENTITY": f"local-{uuid.uuid4().hex[:6]}",
        }  # fmt: skip
        controller = Service("controller", "trainconductor_controller.main", env, tmp_path)
        services.append(controller.start())
        controller.wait_http_ok(f"http://127.0.0.1:{controller_http}/readyz")
        api.wait_http_ok(f"http://127.0.0.1:{api_http}/metrics")
        client.CoreV1Api(kube).create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="ml-user"))
        )
        audience = SCENARIO.values["auth"]["tokenReview"]["audience"]
        token = service_account_token(kube, namespace, "ml-user", [audience])
        with grpc.insecure_channel(f"127.0.0.1:{api_port}") as channel:
            yield Released(
                namespace, queue, priorities["low"], pb_grpc.TrainingServiceStub(channel),
                (("authorization", f"Bearer {token}"),), controller,
            )  # fmt: skip
    except BaseException:
        for service in services:
            print(f"--- {service.name} ---\n{service.log_tail()}")
        raise
    finally:
        drain(kueue.kube, namespace)
        for service in services:
            service.stop()
        redis_server.stop()
        helm("uninstall", RELEASE, "-n", namespace, kubeconfig=cluster.kubeconfig)
        client.CustomObjectsApi(kueue.kube).delete_cluster_custom_object(
            "kueue.x-k8s.io", "v1beta2", "clusterqueues", queue
        )


def test_a_training_waits_in_its_groups_queue_is_held_released_and_runs_as_the_charts_account(
    kube: client.ApiClient, kueue: Kueue, released: Released
) -> None:
    stub, bearer = released.trainings, released.bearer
    spec = lora_spec()
    training = stub.CreateTraining(
        pb.CreateTrainingRequest(spec=spec), metadata=bearer, timeout=10
    ).training
    # The owner's group's queue, and the chart's default priority.
    assert (training.queue, training.priority) == (released.queue, released.priority)

    # Its place comes from the visibility API (localqueues/pendingworkloads get).
    waiting = wait_for(
        "the training to wait for quota, first in its queue",
        lambda: (
            (t := released.get(training.id)).reason == "WaitingForQuota"
            and t.queue_position == 1
            and t
        ),
        timeout=60,
        describe=lambda: str(released.get(training.id)),
    )
    job = client.BatchV1Api(kube).read_namespaced_job(waiting.job_name, released.namespace)
    assert job.spec.suspend is True
    assert job.metadata.labels["kueue.x-k8s.io/priority-class"] == released.priority

    # Held and released through the Workload's spec.active (workloads patch).
    stub.HoldTraining(pb.HoldTrainingRequest(id=training.id), metadata=bearer, timeout=10)
    wait_for(
        "the training to be held",
        lambda: released.get(training.id).reason == "Held",
        timeout=30,
        describe=lambda: str(released.get(training.id)),
    )
    stub.ReleaseTraining(pb.ReleaseTrainingRequest(id=training.id), metadata=bearer, timeout=10)
    apply(kueue.kube, cluster_queue(released.queue, gpus=1))
    wait_for(
        "the training to complete",
        lambda: released.get(training.id).phase == pb.PHASE_COMPLETED,
        timeout=90,
        describe=lambda: str(released.get(training.id)),
    )
    log = released.controller.stopped_log()
    assert "Forbidden" not in log, "Kubernetes refused the controller something"
