"""The controller's Kubernetes client keeps its connections: calls one after
another go over one TLS connection, rather than each opening (and
handshaking) a new one, which costs the API server and the controller CPU
on every Job of a burst."""

from __future__ import annotations

from kubernetes import client

from devstack.stack import KWOK_TOLERATION, Cluster
from trainconductor_controller.kube import Kube, api_client


def job(name: str) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": KWOK_TOLERATION,
                    "containers": [{"name": "main", "image": "example.com/trainer:1"}],
                }
            },
        },
    }


def test_consecutive_calls_reuse_one_connection(cluster: Cluster, namespace: str) -> None:
    api = api_client(str(cluster.kubeconfig), connections=4)
    kube = Kube(api, namespace)
    names = [f"reuse-{i}" for i in range(6)]
    for name in names:
        assert kube.create_job(job(name))
    assert not kube.create_job(job(names[0]))  # AlreadyExists, answered and read
    for name in names:
        assert kube.get_job(name) is not None
        assert kube.set_job_deadline(name, 60, "2027-01-15T08:00:00Z")
    pools = api.rest_client.pool_manager.pools
    opened = sum(pool.num_connections for pool in pools._container.values())
    assert opened == 1, f"{opened} connections opened for {len(names) * 3 + 1} calls"
    assert {
        j.metadata.name for j in client.BatchV1Api(api).list_namespaced_job(namespace).items
    } == set(names)
