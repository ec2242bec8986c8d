"""Fixtures every suite shares: a real Redis, a store, an API server, the
static tokens the tests issue."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.redis_server import RedisServer
from tests.support.api import api_settings
from tests.support.security import StaticTokens, static_user, write_static_tokens
from trainconductor_api.server import ApiServer, build_server
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import TrainingStore

# Every log line of the session is searched for the secrets the tests used;
# SIGTERM stops the session as Ctrl-C does, fixtures torn down.
pytest_plugins = ("tests.support.secret_scan", "tests.support.interrupts")

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_prefix() -> str:
    """Each test gets its own key space in the shared Redis."""
    return f"t{next(_prefixes)}:"


@pytest.fixture
async def store(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[TrainingStore]:
    settings = CommonSettings(redis_url=redis_server.url, redis_key_prefix=key_prefix)
    store = TrainingStore(connect(settings), prefix=key_prefix)
    yield store
    await store.close()


@pytest.fixture
async def api(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[ApiServer]:
    server = build_server(api_settings(redis_server, key_prefix), serve_metrics=False)
    await server.start()
    yield server
    await server.drain_and_stop()


@pytest.fixture
async def channel(api: ApiServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        yield channel


@pytest.fixture
def trainings(channel: grpc.aio.Channel) -> pb_grpc.TrainingServiceAsyncStub:
    return pb_grpc.TrainingServiceStub(channel)


@pytest.fixture
def static_tokens(tmp_path: Path) -> StaticTokens:
    """A token file of two users and an admin (group tc-admins)."""
    alice, bob = static_user("alice", "ml"), static_user("bob", "vision")
    admin = static_user("ops", "tc-admins")
    path = write_static_tokens(tmp_path / "tokens", [alice, bob, admin])
    return StaticTokens(path, alice, bob, admin)
