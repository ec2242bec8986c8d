"""Progress in the store, on a real Redis: the latest report kept with the
training, the ETA from the step rate, the event throttle, stalls, and
retention taking all of it away."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
from trainconductor.v1 import progress_pb2

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from trainconductor_core.errors import TrainingFinished, TrainingNotFound
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import Removal, TrainingStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def timed_store(
    redis_server: RedisServer, key_prefix: str, clock: Clock
) -> AsyncIterator[TrainingStore]:
    settings = CommonSettings(redis_url=redis_server.url, redis_key_prefix=key_prefix)
    store = TrainingStore(connect(settings), prefix=key_prefix, clock=clock)
    yield store
    await store.close()


async def running(store: TrainingStore) -> str:
    record, _ = await store.create(lora_spec(), owner="alice")
    await store.write_status(record.id, StatusUpdate(1, Phase.RUNNING, "Running", "", "train-x"))
    return record.id


def report(step: int, total: int = 1000, loss: float | None = None) -> progress_pb2.Progress:
    return progress_pb2.Progress(step=step, total_steps=total, loss=loss)


async def test_the_eta_follows_the_step_rate_of_the_recent_reports(
    timed_store: TrainingStore, clock: Clock
) -> None:
    store = timed_store
    training_id = await running(store)
    first = await store.report_progress(
        training_id, report(0), event_interval_ms=5000, message="step 0"
    )
    assert first.eta_ms is None  # one report: no rate yet
    clock.now += 10
    second = await store.report_progress(
        training_id, report(100), event_interval_ms=5000, message="step 100"
    )
    assert second.eta_ms == 90_000  # 10 steps a second, 900 to go
    clock.now += 10
    await store.report_progress(
        training_id, report(200, loss=math.nan), event_interval_ms=5000, message="step 200"
    )
    record = await store.get(training_id)
    assert record.progress is not None
    assert record.progress.step == 200
    assert record.progress.eta.ToMilliseconds() == 80_000
    assert math.isnan(record.progress.loss)
    assert record.progress.report_time.ToMilliseconds() == int(clock.now * 1000)

    # Restarted from a checkpoint: the average starts again.
    clock.now += 10
    restarted = await store.report_progress(
        training_id, report(150), event_interval_ms=5000, message="step 150"
    )
    assert restarted.eta_ms is None


async def test_events_come_at_most_once_per_interval_however_often_reports_do(
    timed_store: TrainingStore, clock: Clock
) -> None:
    store = timed_store
    training_id = await running(store)
    before = len(await store.training_events(training_id))
    events = 0
    # 64 a second (a step of time a float holds exactly) for 8 seconds.
    for step in range(512):
        recorded = await store.report_progress(
            training_id, report(step), event_interval_ms=5000, message=f"step {step}"
        )
        events += recorded.event
        clock.now += 1 / 64
    stream = await store.training_events(training_id)
    assert events == 2  # at 0 s and 5 s
    assert len(stream) - before == 2
    assert [e.progress.step for e in stream[before:] if e.progress] == [0, 320]
    assert all(e.reason == "Progress" and e.phase == Phase.RUNNING for e in stream[before:])
    progress = (await store.get(training_id)).progress
    assert progress is not None
    assert progress.step == 511


async def test_a_finished_or_unknown_training_takes_no_report(store: TrainingStore) -> None:
    training_id = await running(store)
    await store.write_status(training_id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
    with pytest.raises(TrainingFinished):
        await store.report_progress(training_id, report(1), event_interval_ms=0, message="")
    assert (await store.get(training_id)).progress is None
    with pytest.raises(TrainingNotFound):
        await store.report_progress("0" * 20, report(1), event_interval_ms=0, message="")


async def test_a_running_training_that_stops_reporting_is_stalled_until_it_reports(
    timed_store: TrainingStore, clock: Clock
) -> None:
    store = timed_store
    training_id = await running(store)
    quiet_id = await running(store)  # never reports: never stalled
    await store.report_progress(training_id, report(10), event_interval_ms=0, message="step 10")
    cutoff = int(clock.now * 1000) - 60_000
    assert (
        await store.mark_stalled(
            await store.stall_candidates(reported_before_ms=cutoff, count=100),
            reported_before_ms=cutoff,
            message="no report",
        )
        == []
    )

    clock.now += 120
    cutoff = int(clock.now * 1000) - 60_000
    candidates = await store.stall_candidates(reported_before_ms=cutoff, count=100)
    assert candidates == [training_id]
    marked = await store.mark_stalled(candidates, reported_before_ms=cutoff, message="no report")
    assert marked == [training_id]
    assert await store.count_stalled() == 1
    assert (await store.get(training_id)).stalled_since_ms == int(clock.now * 1000)
    assert (await store.get(quiet_id)).stalled_since_ms is None
    last = (await store.training_events(training_id))[-1]
    assert (last.reason, last.stalled, last.message) == ("Stalled", True, "no report")
    # A second pass marks nothing again.
    again = await store.stall_candidates(reported_before_ms=cutoff, count=100)
    assert await store.mark_stalled(again, reported_before_ms=cutoff, message="") == []

    # The next report ends the stall at once, throttle or not.
    resumed = await store.report_progress(
        training_id, report(11), event_interval_ms=3_600_000, message="step 11"
    )
    assert resumed.event
    assert (await store.get(training_id)).stalled_since_ms is None
    assert (await store.training_events(training_id))[-1].reason == "ProgressResumed"
    assert await store.count_stalled() == 0

    # Stalled, then finished: the next pass drops it.
    clock.now += 120
    cutoff = int(clock.now * 1000) - 60_000
    candidates = await store.stall_candidates(reported_before_ms=cutoff, count=100)
    await store.mark_stalled(candidates, reported_before_ms=cutoff, message="")
    await store.write_status(training_id, StatusUpdate(1, Phase.FAILED, "Error", ""))
    candidates = await store.stall_candidates(reported_before_ms=cutoff, count=100)
    assert await store.mark_stalled(candidates, reported_before_ms=cutoff, message="") == []
    assert await store.count_stalled() == 0
    assert await store.stall_candidates(reported_before_ms=cutoff, count=100) == []


async def test_retention_removes_the_progress_with_the_training(
    timed_store: TrainingStore, clock: Clock, redis_server: RedisServer, key_prefix: str
) -> None:
    store = timed_store
    training_id = await running(store)
    await store.report_progress(training_id, report(10), event_interval_ms=0, message="")
    clock.now += 120
    cutoff = int(clock.now * 1000) - 60_000
    await store.mark_stalled([training_id], reported_before_ms=cutoff, message="")
    await store.write_status(training_id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
    removed = await store.remove_finished(
        Phase.COMPLETED, [training_id], finished_by_ms=int(clock.now * 1000), tombstone_seconds=0
    )
    assert removed == [Removal.REMOVED]
    redis = connect(CommonSettings(redis_url=redis_server.url))
    try:
        left = [k async for k in redis.scan_iter(match=f"{key_prefix}*")]
        assert not [k for k in left if "progress" in k or training_id in k]
    finally:
        await redis.aclose()
