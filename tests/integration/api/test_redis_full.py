"""The API over a Redis out of memory: CreateTraining answers
RESOURCE_EXHAUSTED naming the cause, reads go on, health stays SERVING and
the gauge says Redis is full; once memory is freed, creates work again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import api_settings
from tests.support.security import plain_channel
from trainconductor_api.server import ApiServer, build_server
from trainconductor_core.redis_config import server_args

ROOM_BYTES = 1024 * 1024


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", server_args())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def admin(full_redis: RedisServer) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(full_redis.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def api(full_redis: RedisServer, key_prefix: str) -> AsyncIterator[ApiServer]:
    server = build_server(api_settings(full_redis, key_prefix), serve_metrics=False)
    await server.start()
    yield server
    await server.drain_and_stop()


def redis_full() -> float | None:
    return REGISTRY.get_sample_value("trainconductor_redis_full")


async def test_a_full_redis_refuses_creates_with_resource_exhausted_and_serves_reads(
    api: ApiServer, admin: aredis.Redis
) -> None:
    async with plain_channel(api.port) as channel:
        v1 = pb_grpc.TrainingServiceStub(channel)
        health: Any = health_pb2_grpc.HealthStub(channel)
        kept = (await v1.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))).training
        used = (await admin.info("memory"))["used_memory"]
        await admin.config_set("maxmemory", used + ROOM_BYTES)

        refused: grpc.aio.AioRpcError | None = None
        for _ in range(10_000):
            try:
                await v1.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))
            except grpc.aio.AioRpcError as err:
                refused = err
                break
        assert refused is not None, "Redis never filled up"
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "Redis is out of memory (OOM: its maxmemory is reached)" in (refused.details() or "")
        # Just past the line, Redis's memory moves back and forth by the
        # clients' buffers: the line is drawn a little below, for good.
        used = (await admin.info("memory"))["used_memory"]
        await admin.config_set("maxmemory", used - 64 * 1024)

        got = await v1.GetTraining(pb.GetTrainingRequest(id=kept.id))
        assert got.training.id == kept.id
        assert (await v1.ListTrainings(pb.ListTrainingsRequest(page_size=5))).trainings
        await v1.CancelTraining(pb.CancelTrainingRequest(id=kept.id))
        # Reads are served: the replicas stay in their Service.
        checked = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert checked.status == health_pb2.HealthCheckResponse.SERVING
        await api.health.probe_once()  # as it does every health_probe_seconds
        assert redis_full() == 1

        await admin.config_set("maxmemory", 0)  # an operator raises it
        await api.health.probe_once()
        assert redis_full() == 0
        created = await v1.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()))
        assert created.training.phase == pb.PHASE_PENDING
