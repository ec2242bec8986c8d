"""`tcctl` with queues, against the real API and Redis: a training submitted
to a queue at a priority, listed by queue, held and released; and where it
stands, read as a person reads it: "waiting for quota in team-a, #3 in
queue: <Kueue's words>"."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devstack.redis_server import RedisServer
from tests.support.api import api_settings
from tests.support.tcctl import EXAMPLES, tcctl_async
from trainconductor_api.server import ApiServer, build_server
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore

SHORT = "insufficient unused quota for nvidia.com/gpu in flavor gpu, 2 more needed"


@pytest.fixture
async def queued_api(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[str]:
    """The address of an API with queues on."""
    server: ApiServer = build_server(
        api_settings(redis_server, key_prefix, queues_enabled=True), serve_metrics=False
    )
    await server.start()
    yield f"127.0.0.1:{server.port}"
    await server.drain_and_stop()


async def submit(address: str, *args: str) -> str:
    run = await tcctl_async(
        address, "create", "-f", str(EXAMPLES / "lora.yaml"), *args, "-o", "name"
    )
    assert run.code == 0, run.err
    return run.out.strip()


async def test_a_training_waits_in_its_queue_and_get_says_where(
    queued_api: str, store: TrainingStore
) -> None:
    training_id = await submit(queued_api, "--queue", "team-a", "--priority", "high")
    await store.write_status(
        training_id,
        StatusUpdate(1, Phase.QUEUED, "WaitingForQuota", SHORT, queue_position=3),
    )
    shown = await tcctl_async(queued_api, "get", training_id)
    assert f"waiting for quota in team-a, #3 in queue: {SHORT}" in shown.out
    assert "team-a (priority high)" in shown.out
    listed = await tcctl_async(queued_api, "list")
    header, row = listed.out.splitlines()[:2]
    assert "QUEUE" in header
    assert "team-a" in row
    assert "#3 in queue" in row


async def test_list_shows_one_queue(queued_api: str) -> None:
    in_a = await submit(queued_api, "--queue", "team-a")
    in_b = await submit(queued_api, "--queue", "team-b")
    run = await tcctl_async(queued_api, "list", "--queue", "team-b", "-o", "name")
    assert run.out.split() == [in_b]
    assert in_a not in run.out


async def test_hold_and_release(queued_api: str) -> None:
    training_id = await submit(queued_api, "--queue", "team-a")
    held = await tcctl_async(queued_api, "hold", training_id)
    assert held.code == 0, held.err
    assert held.out.strip() == f"{training_id} held; out of queue team-a until released"
    shown = await tcctl_async(queued_api, "get", training_id, "-o", "json")
    assert '"held": true' in shown.out
    released = await tcctl_async(queued_api, "release", training_id)
    assert released.out.strip() == f"{training_id} released; back in queue team-a"


async def test_a_training_in_no_queue_can_not_be_held(queued_api: str) -> None:
    training_id = await submit(queued_api)
    run = await tcctl_async(queued_api, "hold", training_id)
    assert run.code == 1
    assert "waits in no queue" in run.err


async def test_without_queues_a_queue_is_refused_naming_the_field(api: ApiServer) -> None:
    run = await tcctl_async(
        f"127.0.0.1:{api.port}", "create", "-f", str(EXAMPLES / "lora.yaml"), "--queue", "team-a"
    )
    assert run.code == 4
    assert "spec.queue: is not taken: this installation runs without queues" in run.err
