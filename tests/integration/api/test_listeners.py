"""Several gRPC servers on the API's port: every connection gets the whole
API, the port is refused when something holds it, and a stop frees it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.ports import free_port
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import api_settings
from trainconductor_api.listeners import PortInUse
from trainconductor_api.server import build_server

SERVICE = "trainconductor.v1.TrainingService"
# Connections the kernel spreads over the listeners by their addresses: with
# 32 over 4, a listener gets none once in 10,000 runs.
CONNECTIONS = 32


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port listened on as a second API process would: with SO_REUSEPORT,
    so the kernel would let more listeners join it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _binds(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_every_connection_gets_the_whole_api_and_a_stop_frees_the_port(
    redis_server: RedisServer, key_prefix: str
) -> None:
    port = free_port()
    settings = api_settings(redis_server, key_prefix, grpc_port=port, grpc_listeners=4)
    api = build_server(settings, serve_metrics=False)
    await api.start()
    assert api.port == port
    # A local subchannel pool: a connection of its own for each channel.
    channels = [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(CONNECTIONS)
    ]
    try:

        async def use(channel: grpc.aio.Channel) -> tuple[int, str]:
            health: Any = health_pb2_grpc.HealthStub(channel)
            checked = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
            trainings = pb_grpc.TrainingServiceStub(channel)
            created = await trainings.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))
            got = await trainings.GetTraining(pb.GetTrainingRequest(id=created.training.id))
            return checked.status, got.training.id

        answers = await asyncio.gather(*(use(channel) for channel in channels))
    finally:
        for channel in channels:
            await channel.close()
        await api.drain_and_stop()
    assert {status for status, _ in answers} == {health_pb2.HealthCheckResponse.SERVING}
    assert len({training for _, training in answers}) == CONNECTIONS
    assert _binds(port), "a listener of the stopped API still holds its port"


@pytest.mark.parametrize("listeners", [1, 4])
async def test_a_port_something_listens_on_is_refused_at_start(
    redis_server: RedisServer, key_prefix: str, held_port: int, listeners: int
) -> None:
    settings = api_settings(redis_server, key_prefix, grpc_port=held_port, grpc_listeners=listeners)
    with pytest.raises((PortInUse, RuntimeError)) as err:
        build_server(settings, serve_metrics=False)
    assert str(held_port) in str(err.value)
