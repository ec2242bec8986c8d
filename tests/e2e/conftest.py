"""Fixtures of the end-to-end tests: the Kubernetes control plane (the
cluster of TC_KUBECONFIG when set, else the local one, started once per
session or reused from `make up`) and the running system (`devstack`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator

import pytest
from kubernetes import client

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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Prints the services' logs under a failed end-to-end test."""
    report = yield
    stack = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and stack is not None:
        report.sections.append(("service logs", stack.logs()))
    return report
