"""The API on Redis reached as operators run it: over TLS, verified by a CA
file, and through Sentinel (plain and over TLS). Real servers each time."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.ports import free_port
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import api_settings
from tests.support.certificates import CertificateAuthority
from tests.support.redis_sentinel import RedisSentinel
from tests.support.secret_scan import SecretRegistry
from trainconductor_api.server import build_server
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("redis-ca"))


@pytest.fixture(scope="module")
def tls_redis(
    ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RedisServer, int]]:
    """A Redis with a TLS port beside its plain one (which the fixture's
    readiness check and the Sentinel test's replication use)."""
    pair = ca.server("redis")
    tls_port = free_port()
    server = RedisServer(
        tmp_path_factory.mktemp("redis-tls"),
        extra_args=(
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(pair.cert),
            "--tls-key-file", str(pair.key),
            "--tls-ca-cert-file", str(ca.cert),
            "--tls-auth-clients", "no",
        ),
    )  # fmt: skip
    server.start()
    yield server, tls_port
    server.stop()


@asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[pb_grpc.TrainingServiceStub]:
    """The API with these Redis settings, once its health says SERVING."""
    redis_server: RedisServer = settings.pop("redis_server")
    api = build_server(
        api_settings(redis_server, f"conn{time.monotonic_ns()}:", **settings), serve_metrics=False
    )
    await api.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)  # no types for grpc_health
            deadline = time.monotonic() + 10
            while True:
                status = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                if status.status == SERVING:
                    break
                assert time.monotonic() < deadline, f"health stayed {status.status}"
                await asyncio.sleep(0.1)
            yield pb_grpc.TrainingServiceStub(channel)
    finally:
        await api.drain_and_stop()


async def _create_and_read(trainings: pb_grpc.TrainingServiceStub) -> None:
    created = await trainings.CreateTraining(  # type: ignore[misc]
        pb.CreateTrainingRequest(spec=lora_spec()), timeout=5
    )
    got = await trainings.GetTraining(  # type: ignore[misc]
        pb.GetTrainingRequest(id=created.training.id), timeout=5
    )
    assert got.training.phase == pb.PHASE_PENDING


async def test_the_api_works_on_a_tls_redis_verified_by_its_ca(
    tls_redis: tuple[RedisServer, int], ca: CertificateAuthority
) -> None:
    server, tls_port = tls_redis
    async with serving(
        redis_server=server, redis_url=f"rediss://127.0.0.1:{tls_port}/0", redis_ca_file=ca.cert
    ) as trainings:
        await _create_and_read(trainings)


async def test_a_tls_redis_whose_certificate_the_ca_did_not_sign_is_not_trusted(
    tls_redis: tuple[RedisServer, int], tmp_path: Path
) -> None:
    server, tls_port = tls_redis
    stranger = CertificateAuthority(tmp_path / "other-ca", name="other-ca")
    settings = api_settings(
        server, "untrusted:", redis_url=f"rediss://127.0.0.1:{tls_port}/0",
        redis_ca_file=stranger.cert,
    )  # fmt: skip
    api = build_server(settings, serve_metrics=False)
    await api.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            await asyncio.sleep(1)  # health probes every 0.2 s here
            health: Any = health_pb2_grpc.HealthStub(channel)
            status = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert status.status != SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.TrainingServiceStub(channel).CreateTraining(
                    pb.CreateTrainingRequest(spec=lora_spec()), timeout=10
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await api.drain_and_stop()


async def test_the_api_finds_its_redis_through_sentinel(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    sentinel = RedisSentinel(tmp_path / "sentinel", redis_server)
    sentinel.start()
    try:
        async with serving(
            redis_server=redis_server,
            redis_url="redis://127.0.0.1:1/0",  # unused: the Sentinel names the master
            redis_sentinels=[sentinel.address],
            redis_max_connections=40,
        ) as trainings:
            await _create_and_read(trainings)
        # The pool is as large as asked: each watch holds a connection, and
        # the API bounds its watches by this size.
        found = connect(
            CommonSettings(redis_sentinels=[sentinel.address], redis_max_connections=40)
        )
        assert found.connection_pool.max_connections == 40
        await found.aclose()
    finally:
        sentinel.stop()


async def test_the_api_finds_its_redis_through_sentinels_that_ask_for_a_password(
    redis_server: RedisServer, tmp_path: Path, log_secrets: SecretRegistry
) -> None:
    password = log_secrets.add(secrets.token_hex(16), "the Sentinel's password")
    sentinel = RedisSentinel(tmp_path / "sentinel", redis_server, conf=f"requirepass {password}")
    sentinel.start(redis.Redis(port=sentinel.port, password=password, socket_timeout=1))
    try:
        # Without the password the Sentinel names no master: no way to Redis.
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=sentinel.port, socket_timeout=1).sentinel_masters()
        async with serving(
            redis_server=redis_server,
            redis_url="redis://127.0.0.1:1/0",
            redis_sentinels=[sentinel.address],
            redis_sentinel_password=password,
        ) as trainings:
            await _create_and_read(trainings)
    finally:
        sentinel.stop()


async def test_the_api_finds_its_redis_through_sentinel_over_tls(
    tls_redis: tuple[RedisServer, int], ca: CertificateAuthority, tmp_path: Path
) -> None:
    server, tls_port = tls_redis
    pair = ca.server("sentinel")
    sentinel = RedisSentinel(
        tmp_path / "sentinel",
        server,
        master_port=tls_port,
        conf="\n".join([
            "port 0",
            "tls-port SENTINEL_PORT",
            f"tls-cert-file {pair.cert}",
            f"tls-key-file {pair.key}",
            f"tls-ca-cert-file {ca.cert}",
            "tls-auth-clients no",
            "tls-replication yes",  # it speaks TLS to the master too
        ]),
    )  # fmt: skip
    sentinel.conf = sentinel.conf.replace("SENTINEL_PORT", str(sentinel.port))
    sentinel.start(
        redis.Redis(port=sentinel.port, ssl=True, ssl_ca_certs=str(ca.cert), socket_timeout=1)
    )
    try:
        async with serving(
            redis_server=server,
            redis_url="redis://127.0.0.1:1/0",
            redis_sentinels=[sentinel.address],
            redis_ca_file=ca.cert,
        ) as trainings:
            await _create_and_read(trainings)
    finally:
        sentinel.stop()
