"""The whole system: a real Redis, the API and the controller as processes,
in a namespace of a real control plane. One definition serves the
end-to-end tests, the bench and `make up`."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from kubernetes import client, config
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.cluster import LocalCluster
from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.waiting import wait_for

# The local cluster's nodes are kwok's, tainted so that real pods stay away.
KWOK_TOLERATION = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
LEASE_SECONDS = 4


def controller_timings() -> dict[str, str]:
    """Short leases and retries: a local controller takes over in seconds."""
    return {
        "TC_LEASE_DURATION_SECONDS": str(LEASE_SECONDS),
        "TC_RENEW_DEADLINE_SECONDS": "3",
        "TC_RETRY_PERIOD_SECONDS": "1",
    }


@dataclass(frozen=True)
class Cluster:
    """A Kubernetes cluster to run against: the local control plane, or one
    given by its kubeconfig (a kind cluster, say)."""

    kubeconfig: Path
    local: LocalCluster | None

    def api_client(self) -> client.ApiClient:
        api: client.ApiClient = config.new_client_from_config(config_file=str(self.kubeconfig))
        return api

    @property
    def tolerations(self) -> list[dict[str, str]]:
        return KWOK_TOLERATION if self.local is not None else []


@contextmanager
def given_or_local_cluster(keep: bool = False) -> Iterator[Cluster]:
    """The cluster of TC_KUBECONFIG when set; else the local control plane,
    started unless it runs already and stopped only if started here (and not
    `keep`)."""
    given = os.environ.get("TC_KUBECONFIG")
    if given:
        if not Path(given).exists():
            raise RuntimeError(f"TC_KUBECONFIG={given} does not exist")
        yield Cluster(Path(given), None)
        return
    local = LocalCluster()
    started = local.up()
    try:
        yield Cluster(local.kubeconfig, local)
    finally:
        if started and not keep:
            local.down()


@dataclass
class Stack:
    cluster: Cluster
    redis: RedisServer
    namespace: str
    log_dir: Path
    api: Service | None = None
    api_port: int = 0
    api_http_port: int = 0
    controllers: dict[str, Service] = field(default_factory=dict)
    channel: grpc.Channel | None = None

    @property
    def kube(self) -> client.ApiClient:
        return self.cluster.api_client()

    def common_env(self) -> dict[str, str]:
        return {"TC_REDIS_URL": self.redis.url, "TC_LOG_LEVEL": "INFO"}

    def start_api(self, **extra: str) -> None:
        self.api_port = free_port()
        http_port = self.api_http_port = free_port()
        env = {
            **self.common_env(),
            "TC_GRPC_HOST": "127.0.0.1",
            "TC_GRPC_PORT": str(self.api_port),
            "TC_HTTP_PORT": str(http_port),
            "TC_DRAIN_SECONDS": "1",
            # Trainings' logs, read from the cluster; a followed one looks
            # again often, so that tests see a new pod soon.
            "TC_KUBECONFIG": str(self.cluster.kubeconfig),
            "TC_TRAININGS_NAMESPACE": self.namespace,
            "TC_POD_LOGS_ENABLED": "true",
            "TC_LOG_POLL_SECONDS": "0.5",
            **extra,
        }
        self.api = Service("api", "trainconductor_api.main", env, self.log_dir).start()
        self.api.wait_http_ok(f"http://127.0.0.1:{http_port}/metrics")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.api_port}")

    def start_controller(self, identity: str = "controller-0", **extra: str) -> Service:
        http_port = free_port()
        env = {
            **self.common_env(),
            "TC_KUBECONFIG": str(self.cluster.kubeconfig),
            "TC_NAMESPACE": self.namespace,
            "TC_LEASE_NAMESPACE": self.namespace,
            "TC_IDENTITY": identity,
            "TC_HTTP_PORT": str(http_port),
            "TC_IMAGE": "example.com/trainer:1",
            "TC_TOLERATIONS": json.dumps(self.cluster.tolerations),
            **controller_timings(),
            "TC_CHANGE_CLAIM_IDLE_SECONDS": "5",
            "TC_RESYNC_SECONDS": "30",
            "TC_WORKERS": "8",
            **extra,
        }
        service = Service(identity, "trainconductor_controller.main", env, self.log_dir).start()
        service.http_port = http_port
        self.controllers[identity] = service
        service.wait_http_ok(f"http://127.0.0.1:{http_port}/readyz")
        return service

    def stop_all(self) -> None:
        if self.channel:
            self.channel.close()
        for service in [*self.controllers.values(), *([self.api] if self.api else [])]:
            if service.alive:
                service.kill()

    def logs(self) -> str:
        parts = []
        for service in [*([self.api] if self.api else []), *self.controllers.values()]:
            parts.append(f"--- {service.name} ---\n{service.log_tail()}")
        return "\n".join(parts)

    # the API, as a client uses it

    @property
    def trainings(self) -> pb_grpc.TrainingServiceStub:
        assert self.channel is not None
        return pb_grpc.TrainingServiceStub(self.channel)

    def create(self, spec: pb.TrainingSpec, request_id: str = "") -> pb.Training:
        response = self.trainings.CreateTraining(
            pb.CreateTrainingRequest(spec=spec, request_id=request_id), timeout=10
        )
        return response.training

    def get(self, training_id: str) -> pb.Training:
        return self.trainings.GetTraining(
            pb.GetTrainingRequest(id=training_id), timeout=10
        ).training

    def cancel(self, training_id: str) -> pb.Training:
        request = pb.CancelTrainingRequest(id=training_id)
        return self.trainings.CancelTraining(request, timeout=10).training

    def wait_for_phase(
        self, training_id: str, phases: set[pb.Phase.ValueType], timeout: float = 60
    ) -> pb.Training:
        training: pb.Training = wait_for(
            f"training {training_id} to reach {sorted(pb.Phase.Name(p) for p in phases)}",
            lambda: (t := self.get(training_id)).phase in phases and t,
            timeout,
            describe=lambda: str(self.get(training_id)),
        )
        return training

    # Kubernetes, as an operator sees it

    def jobs(self) -> list[client.V1Job]:
        items: list[client.V1Job] = (
            client.BatchV1Api(self.kube).list_namespaced_job(self.namespace).items
        )
        return items

    def pods_of(self, job_name: str) -> list[client.V1Pod]:
        items: list[client.V1Pod] = (
            client.CoreV1Api(self.kube)
            .list_namespaced_pod(self.namespace, label_selector=f"job-name={job_name}")
            .items
        )
        return items

    @contextmanager
    def quota(self, name: str, hard: dict[str, str]) -> Iterator[None]:
        """A ResourceQuota of the namespace, in force while the block runs."""
        core = client.CoreV1Api(self.kube)
        quota = client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name=name), spec=client.V1ResourceQuotaSpec(hard=hard)
        )
        core.create_namespaced_resource_quota(self.namespace, quota)
        try:
            # Admission enforces a quota once its controller filled in its status.
            wait_for(
                f"the quota controller to fill in the status of quota {name}",
                lambda: core.read_namespaced_resource_quota(name, self.namespace).status.hard,
            )
            yield
        finally:
            core.delete_namespaced_resource_quota(name, self.namespace)

    def fail_pod(self, job_name: str, exit_code: int, reason: str, message: str) -> None:
        pod = wait_for(
            "a running pod",
            lambda: [p for p in self.pods_of(job_name) if p.status.phase == "Running"],
        )[0]
        annotations = {
            "kwok.trainconductor.dev/fail": "true",
            "kwok.trainconductor.dev/exit-code": str(exit_code),
            "kwok.trainconductor.dev/reason": reason,
            "kwok.trainconductor.dev/message": message,
        }
        client.CoreV1Api(self.kube).patch_namespaced_pod(
            pod.metadata.name, self.namespace, {"metadata": {"annotations": annotations}}
        )


@contextmanager
def running_stack(
    cluster: Cluster,
    log_dir: Path,
    env: dict[str, str] | None = None,
    controller_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Redis, the API and one controller (with `env` added to both, and
    `controller_env` to the controller), in a namespace of their own."""
    redis_server = RedisServer(log_dir / "redis")
    redis_server.start()
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    stack = Stack(cluster, redis_server, name, log_dir)
    try:
        stack.start_api(**(env or {}))
        stack.start_controller(**(env or {}), **(controller_env or {}))
        yield stack
    finally:
        stack.stop_all()
        redis_server.stop()
        core.delete_namespace(name)
