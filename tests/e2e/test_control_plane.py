"""The local control plane is real Kubernetes: Jobs get Pods from the Job
controller, the scheduler places them, kwok runs them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import cast

import pytest
import urllib3
from kubernetes import client

from devstack.cluster import binary
from devstack.pod_logs import DEFAULT_LINES, PodLog, serve_pod_log
from devstack.stack import Cluster
from devstack.waiting import wait_for

TOLERATE_KWOK = [
    client.V1Toleration(key="kwok.x-k8s.io/node", operator="Exists", effect="NoSchedule")
]


def job(name: str, *, gpus: int = 0, deadline: int | None = None) -> client.V1Job:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else None
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=deadline,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    tolerations=TOLERATE_KWOK,
                    containers=[
                        client.V1Container(
                            name="trainer",
                            image="example.com/trainer:1",
                            resources=client.V1ResourceRequirements(limits=limits),
                        )
                    ],
                )
            ),
        ),
    )


def condition(kube: client.ApiClient, namespace: str, name: str) -> tuple[str, str] | None:
    status = client.BatchV1Api(kube).read_namespaced_job_status(name, namespace).status
    for c in status.conditions or []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return c.type, c.reason or ""
    return None


def pods(kube: client.ApiClient, namespace: str, job_name: str) -> list[client.V1Pod]:
    items: list[client.V1Pod] = (
        client.CoreV1Api(kube)
        .list_namespaced_pod(namespace, label_selector=f"job-name={job_name}")
        .items
    )
    return items


def test_a_job_runs_on_a_kwok_node_and_completes(kube: client.ApiClient, namespace: str) -> None:
    client.BatchV1Api(kube).create_namespaced_job(namespace, job("ok"))
    running = wait_for(
        "a Running pod",
        lambda: [p for p in pods(kube, namespace, "ok") if p.status.phase == "Running"],
    )
    assert running[0].spec.node_name.startswith("kwok-")
    assert wait_for("the Job to finish", lambda: condition(kube, namespace, "ok")) == (
        "Complete",
        "CompletionsReached",
    )


def test_a_failing_pod_fails_its_job_with_backoff_limit_exceeded(
    kube: client.ApiClient, namespace: str
) -> None:
    client.BatchV1Api(kube).create_namespaced_job(namespace, job("fails"))
    pod = wait_for(
        "a Running pod",
        lambda: [p for p in pods(kube, namespace, "fails") if p.status.phase == "Running"],
    )[0]
    client.CoreV1Api(kube).patch_namespaced_pod(
        pod.metadata.name,
        namespace,
        {
            "metadata": {
                "annotations": {
                    "kwok.trainconductor.dev/fail": "true",
                    "kwok.trainconductor.dev/exit-code": "137",
                    "kwok.trainconductor.dev/reason": "OOMKilled",
                }
            }
        },
    )
    assert wait_for("the Job to fail", lambda: condition(kube, namespace, "fails")) == (
        "Failed",
        "BackoffLimitExceeded",
    )
    terminated = pods(kube, namespace, "fails")[0].status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_an_exceeded_deadline_fails_the_job(kube: client.ApiClient, namespace: str) -> None:
    slow = job("slow", deadline=1)
    slow.spec.template.metadata = client.V1ObjectMeta(
        annotations={"kwok.trainconductor.dev/run-duration": "60s"}
    )
    client.BatchV1Api(kube).create_namespaced_job(namespace, slow)
    assert wait_for("the Job to fail", lambda: condition(kube, namespace, "slow")) == (
        "Failed",
        "DeadlineExceeded",
    )


def test_a_job_asking_for_too_many_gpus_stays_pending_unschedulable(
    kube: client.ApiClient, namespace: str
) -> None:
    client.BatchV1Api(kube).create_namespaced_job(namespace, job("greedy", gpus=16))

    def unschedulable() -> client.V1PodCondition | None:
        for pod in pods(kube, namespace, "greedy"):
            for c in pod.status.conditions or []:
                if c.type == "PodScheduled" and c.reason == "Unschedulable":
                    return c
        return None

    scheduled = wait_for("the scheduler's verdict", unschedulable)
    assert "nvidia.com/gpu" in scheduled.message
    time.sleep(1)
    assert [p.status.phase for p in pods(kube, namespace, "greedy")] == ["Pending"]


def test_a_gpu_job_schedules_on_a_gpu_node(kube: client.ApiClient, namespace: str) -> None:
    client.BatchV1Api(kube).create_namespaced_job(namespace, job("gpu", gpus=2))
    pod = wait_for(
        "a Running pod",
        lambda: [p for p in pods(kube, namespace, "gpu") if p.status.phase == "Running"],
    )[0]
    assert pod.spec.node_name.startswith("kwok-gpu-")


def test_helm_installs_a_chart_into_the_cluster(cluster: Cluster, namespace: str) -> None:
    chart = Path(__file__).parent / "testdata" / "trivial-chart"
    result = subprocess.run(
        [
            binary("helm"), "install", "trivial", str(chart),
            "--kubeconfig", str(cluster.kubeconfig),
            "--namespace", namespace,
            "--set", "greeting=hi",
            "--wait", "--timeout", "60s",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    configmap = client.CoreV1Api(cluster.api_client()).read_namespaced_config_map(
        "trivial-greeting", namespace
    )
    assert configmap.data == {"greeting": "hi"}


def test_kwok_serves_a_pods_log_and_follows_it_as_it_is_written(
    cluster: Cluster, kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    if cluster.local is None:
        pytest.skip("kwok's simulated logs exist on the local control plane only")
    slow = job("talks")
    slow.spec.template.metadata = client.V1ObjectMeta(
        annotations={"kwok.trainconductor.dev/run-duration": "60s"}
    )
    client.BatchV1Api(kube).create_namespaced_job(namespace, slow)
    pod = wait_for("a running pod", lambda: running(kube, namespace, "talks"))
    core = client.CoreV1Api(kube)
    # A pod that no Logs object names has the cluster's few lines.
    assert core.read_namespaced_pod_log(pod, namespace).splitlines() == list(DEFAULT_LINES)

    log = PodLog(tmp_path / "talks.log")
    log.write("epoch 1")
    serve_pod_log(kube, namespace, pod, log)
    wait_for(
        "kwok to serve the pod's own log",
        lambda: core.read_namespaced_pod_log(pod, namespace) == "epoch 1\n",
    )
    stream = cast(
        urllib3.HTTPResponse,
        core.read_namespaced_pod_log(
            pod,
            namespace,
            follow=True,
            timestamps=True,
            _preload_content=False,
            _request_timeout=(10, 30),
        ),
    )
    try:
        assert stream.read1(4096).decode().endswith(" epoch 1\n")
        log.write("epoch 2")
        assert stream.read1(4096).decode().endswith(" epoch 2\n")
    finally:
        stream.close()  # a followed log never ends: its connection is not reused


def running(kube: client.ApiClient, namespace: str, job_name: str) -> str:
    names = [
        p.metadata.name for p in pods(kube, namespace, job_name) if p.status.phase == "Running"
    ]
    return str(names[0]) if names else ""
