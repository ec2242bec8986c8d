"""Fixtures of the store's suites: a Redis configured as the chart
configures its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.redis_server import RedisServer
from trainconductor_core.redis_config import server_args


@pytest.fixture(scope="module")
def tuned_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of its own for the module, with the settings Train Conductor
    asks for (trainconductor_core.redis_config): what a module measures of
    it is its own."""
    server = RedisServer(tmp_path_factory.mktemp("tuned-redis"), server_args())
    server.start()
    yield server
    server.stop()
