"""Redis goes away and comes back: UNAVAILABLE meanwhile, health follows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import api_settings
from trainconductor_api.server import build_server

SERVICE = "trainconductor.v1.TrainingService"


class HealthClient(Protocol):
    """The health stub on an aio channel (the stubs of `HealthStub` list no methods)."""

    Check: grpc.aio.UnaryUnaryMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ]


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


async def wait_for_health(health: HealthClient, want: int, within: float = 10) -> float:
    start = time.monotonic()
    while True:
        response = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        if response.status == want:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"health stayed {response.status}, wanted {want}")
        await asyncio.sleep(0.05)


async def test_redis_restart_gives_unavailable_then_full_service(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    api = build_server(api_settings(own_redis, "outage:"), serve_metrics=False)
    await api.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            trainings = pb_grpc.TrainingServiceStub(channel)
            health = cast(HealthClient, health_pb2_grpc.HealthStub(channel))
            await wait_for_health(health, health_pb2.HealthCheckResponse.SERVING)
            before = await trainings.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))
            await asyncio.sleep(1.2)  # AOF is fsynced every second

            own_redis.kill()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await trainings.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "Traceback" not in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await trainings.GetTraining(pb.GetTrainingRequest(id=before.training.id))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            await wait_for_health(health, health_pb2.HealthCheckResponse.NOT_SERVING)
            # The operator paged for it reads why in the log line of the change.
            turned = [r for r in caplog.records if r.getMessage() == "health is now NOT_SERVING"]
            assert [getattr(r, "why", "") for r in turned] == [
                "Redis is unavailable: ConnectionError"
            ]

            own_redis.start()
            await wait_for_health(health, health_pb2.HealthCheckResponse.SERVING)
            got = await trainings.GetTraining(pb.GetTrainingRequest(id=before.training.id))
            assert got.training.id == before.training.id
            after = await trainings.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))
            assert after.training.phase == pb.PHASE_PENDING
    finally:
        await api.drain_and_stop()
