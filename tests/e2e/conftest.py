"""The Kubernetes control plane for the end-to-end tests.

Uses the cluster of the kubeconfig in TC_KUBECONFIG when it is set (a kind
cluster, say); otherwise starts the local control plane once per session
(or reuses the one `make up` runs) and stops it only if it started it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kubernetes import client, config

from tests.cluster.local import LocalCluster

if TYPE_CHECKING:
    from tests.e2e.stack import Stack


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    local: LocalCluster | None

    def api_client(self) -> client.ApiClient:
        api: client.ApiClient = config.new_client_from_config(config_file=str(self.kubeconfig))
        return api


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
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
        if started and not os.environ.get("TC_KEEP_CLUSTER"):
            local.down()


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


@contextmanager
def running_stack(
    cluster: Cluster, log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Redis, the API and one controller (with `env` added to both)."""
    from tests.e2e.stack import Stack
    from tests.support.redis_server import RedisServer

    redis_server = RedisServer(log_dir / "redis")
    redis_server.start()
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    stack = Stack(cluster, redis_server, name, log_dir)
    try:
        stack.start_api(**(env or {}))
        stack.start_controller(**(env or {}))
        yield stack
    finally:
        stack.stop_all()
        redis_server.stop()
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
