"""Each service's calls work as the Redis ACL user docs/security.md gives it,
and that user can do nothing else."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import StartApi
from tests.support.redis_acl import documented_acl, setuser_arguments
from tests.support.secret_scan import SecretRegistry
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import Removal, TrainingStore


@pytest.fixture(scope="module")
def acl_redis(
    tmp_path_factory: pytest.TempPathFactory, log_secrets: SecretRegistry
) -> Iterator[tuple[RedisServer, str]]:
    """A Redis of its own with the documented users; yields it and their password."""
    server = RedisServer(tmp_path_factory.mktemp("redis-acl"))
    server.start()
    password = log_secrets.add(secrets.token_hex(16), "the password of the ACL users")
    admin: Any = redis.Redis(port=server.port)  # execute_command has no annotations
    for user in documented_acl():
        admin.execute_command(*setuser_arguments(user, password))
    admin.execute_command("ACL", "SETUSER", "default", "off")  # nobody without a user
    yield server, password
    server.stop()


def settings(server: RedisServer, user: str, password: str) -> dict[str, Any]:
    return {
        "redis_url": server.url,
        "redis_username": user,
        "redis_password": password,
        "redis_key_prefix": "tc:",
    }


@pytest.fixture
async def controller_store(acl_redis: tuple[RedisServer, str]) -> AsyncIterator[TrainingStore]:
    server, password = acl_redis
    common = CommonSettings(**settings(server, "tc-controller", password))
    store = TrainingStore(connect(common), prefix="tc:")
    yield store
    await store.close()


async def test_the_api_works_as_its_acl_user(
    start_api: StartApi, acl_redis: tuple[RedisServer, str], controller_store: TrainingStore
) -> None:
    server, password = acl_redis
    api = await start_api(**settings(server, "tc-api", password), max_active_trainings_per_owner=5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        request = pb.CreateTrainingRequest(spec=lora_spec(team="nlp"), request_id="acl-1")
        training = (await stub.CreateTraining(request)).training
        assert (await stub.CreateTraining(request)).training.id == training.id
        await stub.GetTraining(pb.GetTrainingRequest(id=training.id))
        for where in ({}, {"labels": {"team": "nlp"}}, {"owner": "anonymous"}):
            listed = await stub.ListTrainings(pb.ListTrainingsRequest(**where))
            assert [t.id for t in listed.trainings] == [training.id]
        watch_all = stub.WatchTrainings(pb.WatchTrainingsRequest())
        await stub.CancelTraining(pb.CancelTrainingRequest(id=training.id))

        # The controller, as its user, takes the change and finishes the training.
        await controller_store.ensure_consumer_group("controller")
        changes = await controller_store.read_changes("controller", "c-0", block_ms=1000)
        assert {c.training_id for c in changes} == {training.id}
        await controller_store.claim_stale_changes("controller", "c-1", min_idle_ms=0)
        await controller_store.ack_changes("controller", [c.entry_id for c in changes])
        assert await controller_store.change_feed_lag("controller") == 0
        update = StatusUpdate(2, Phase.CANCELED, "Canceled", "stopped", job_name="tc-x")
        await controller_store.write_status(training.id, update)
        assert [i async for i in controller_store.unfinished_ids()] == []  # it finished
        assert (await controller_store.get_many([training.id]))[0] is not None
        assert (await controller_store.count_by_phase())[Phase.CANCELED] == 1
        await controller_store.ping()
        assert await controller_store.has_room()

        events = [r.event async for r in stub.WatchTraining(
            pb.WatchTrainingRequest(id=training.id)
        )]  # fmt: skip
        assert events[-1].phase == pb.PHASE_CANCELED
        resumed = [r.event async for r in stub.WatchTraining(
            pb.WatchTrainingRequest(id=training.id, after_event_id=events[0].event_id)
        )]  # fmt: skip
        assert resumed == events[1:]
        first = await anext(aiter(watch_all))
        assert first.event.training_id == training.id
        watch_all.cancel()

        # Its retention period over, the controller removes it.
        removed = await controller_store.remove_finished(
            Phase.CANCELED,
            await controller_store.finished_ids(
                Phase.CANCELED, recorded_by_ms=int(time.time() * 1000), count=10
            ),
            finished_by_ms=int(time.time() * 1000) + 1000,
            tombstone_seconds=60,
        )
        assert removed == [Removal.REMOVED]
        with pytest.raises(grpc.aio.AioRpcError, match="removed after the retention period"):
            await stub.GetTraining(pb.GetTrainingRequest(id=training.id))


async def test_the_users_can_do_nothing_else(acl_redis: tuple[RedisServer, str]) -> None:
    server, password = acl_redis
    # The controller removes trainings (retention), under the prefix only;
    # the API removes nothing.
    for user, refused in (
        ("tc-api", [("DEL", "tc:x")]),
        ("tc-controller", [("DEL", "other-app:x")]),
    ):
        client: Any = aioredis.Redis(port=server.port, username=user, password=password)
        for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "*"), *refused):
            with pytest.raises(NoPermissionError):
                await client.execute_command(*command)
        with pytest.raises(NoPermissionError):
            await client.hgetall("other-app:secret")  # a key outside the prefix
        await client.aclose()
