"""The ends of finished trainings' logs in the store, on a real Redis: kept
by rank, read back, never kept for a training that is gone, and removed
with the training by retention."""

from __future__ import annotations

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from trainconductor_core.kept_logs import KeptLog
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import Removal, TrainingStore

LOG = "2026-12-05T07:11:20.726698000Z step 9\n2026-12-05T07:11:21.000000000Z Killed\n"


async def failed(store: TrainingStore) -> str:
    record, _ = await store.create(lora_spec(), owner="alice")
    update = StatusUpdate(1, Phase.FAILED, "Error", "exit code 137", "train-x", finish_time_ms=1)
    await store.write_status(record.id, update)
    return record.id


async def test_each_ranks_end_is_kept_and_read_back(store: TrainingStore) -> None:
    training_id = await failed(store)
    rank0 = KeptLog(0, 2, "train-x-a2-0-abcde", LOG, earlier_dropped=True)
    rank1 = KeptLog(1, 2, "train-x-a2-1-fghij", "2026-12-05T07:11:20Z café\n")
    assert await store.keep_logs(training_id, [rank0, rank1])
    assert await store.kept_logs(training_id) == {0: rank0, 1: rank1}
    # Kept again (a repeated reconcile): the newer replaces it.
    newer = KeptLog(0, 3, "train-x-a3-0-klmno", LOG)
    assert await store.keep_logs(training_id, [newer])
    assert (await store.kept_logs(training_id))[0] == newer


async def test_nothing_is_kept_for_a_training_that_is_gone(store: TrainingStore) -> None:
    assert not await store.keep_logs("0" * 20, [KeptLog(0, 1, "pod", LOG)])
    assert await store.kept_logs("0" * 20) == {}


async def test_retention_removes_the_kept_logs_with_the_training(
    store: TrainingStore, redis_server: RedisServer, key_prefix: str
) -> None:
    training_id = await failed(store)
    await store.keep_logs(training_id, [KeptLog(0, 1, "train-x-abcde", LOG)])
    removed = await store.remove_finished(
        Phase.FAILED, [training_id], finished_by_ms=10, tombstone_seconds=0
    )
    assert removed == [Removal.REMOVED]
    assert await store.kept_logs(training_id) == {}
    redis = connect(CommonSettings(redis_url=redis_server.url))
    try:
        left = [k async for k in redis.scan_iter(match=f"{key_prefix}*")]
        assert not [k for k in left if training_id in k]
    finally:
        await redis.aclose()
