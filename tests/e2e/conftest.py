"""Fixtures of the end-to-end tests: the Kubernetes control plane (the
cluster of TC_KUBECONFIG when set, else the local one, started once per
session or reused from `make up`), Kueue beside it, and the running system
(`devstack`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator

import pytest
from kubernetes import client

from devstack.kueue import Kueue, running_kueue
from devstack.queues import (
    applied,
    apply,
    cluster_queue,
    drain,
    local_queue,
    priority_class,
    resource_flavor,
)
from devstack.stack import Cluster, Stack, given_or_local_cluster, running_stack


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with given_or_local_cluster(keep=bool(os.environ.get("TC_KEEP_CLUSTER"))) as found:
        yield found


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, the API and one controller for the tests of one module."""
    with running_stack(cluster, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def kueue(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kueue]:
    """Kueue's manager serving the local control plane (`make up`'s when it
    runs one), with the ResourceFlavor `gpu` of the GPU nodes."""
    if cluster.local is None:
        pytest.skip(
            "Kueue runs as a process beside the local control plane only; "
            "TC_KUBECONFIG names another cluster"
        )
    with running_kueue(cluster.kubeconfig, tmp_path_factory.mktemp("kueue")) as running:
        apply(running.kube, resource_flavor("gpu"))
        yield running


@pytest.fixture
def kueue_namespace(kueue: Kueue, namespace: str) -> Iterator[str]:
    """The test's namespace, whose Jobs are deleted after the test, and their
    Workloads waited for while Kueue still runs."""
    yield namespace
    drain(kueue.kube, namespace)


@pytest.fixture
def queue(kueue: Kueue, kueue_namespace: str) -> Iterator[str]:
    """A LocalQueue in the test's namespace, to a ClusterQueue of its own
    (the same name) with 2 GPUs; its Jobs are deleted after the test, before
    the queues."""
    namespace = kueue_namespace
    with applied(
        kueue.kube, [cluster_queue(namespace, gpus=2), local_queue(namespace, namespace, namespace)]
    ):
        yield namespace
        drain(kueue.kube, namespace)


@pytest.fixture(scope="session")
def priorities(kueue: Kueue) -> Iterator[dict[str, str]]:
    """WorkloadPriorityClasses of the session, highest first: rank to name."""
    suffix = uuid.uuid4().hex[:8]
    ranks = {"top": 400, "high": 300, "medium": 200, "low": 100}
    classes = [priority_class(f"e2e-{rank}-{suffix}", value) for rank, value in ranks.items()]
    with applied(kueue.kube, classes):
        yield {rank: c["metadata"]["name"] for rank, c in zip(ranks, classes, strict=True)}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Prints the services' logs (and Kueue's) under a failed end-to-end test."""
    report = yield
    funcargs = item.funcargs if hasattr(item, "funcargs") else {}
    stack = funcargs.get("stack")
    if report.when == "call" and report.failed and stack is not None:
        report.sections.append(("service logs", stack.logs()))
    kueue = funcargs.get("kueue")
    if report.when == "call" and report.failed and isinstance(kueue, Kueue):
        report.sections.append(("Kueue's log", kueue.log_tail(60)))
    return report
