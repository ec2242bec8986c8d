"""A log stream's bounds: a slow client holds a few reads, not the log; the
lines it is sent keep to the rate."""

from __future__ import annotations

import asyncio
from typing import cast

from trainconductor_api.log_stream import LogRequest, LogStreamer, StreamLimits, _Pace
from trainconductor_api.pod_logs import KubernetesLogs, LogQuery, TrainingPod
from trainconductor_core.store import TrainingStore

LINE = b"2026-12-05T07:11:20.726698000Z " + b"x" * 1000 + b"\n"
RUNNING = TrainingPod("train-x-abcde", 0, 1, "2026-12-05T07:11:00Z", started=True, done=False)


class EndlessLog:
    """A pod that writes faster than anyone reads: every read returns 64 KiB."""

    def __init__(self) -> None:
        self.reads = 0

    async def chunk(self) -> bytes | None:
        self.reads += 1
        await asyncio.sleep(0)
        return LINE * 64

    async def close(self) -> None:
        pass


class Cluster:
    def __init__(self) -> None:
        self.log = EndlessLog()

    async def pods(self, training_id: str) -> list[TrainingPod]:
        return [RUNNING]

    async def pod(self, name: str) -> TrainingPod | None:
        return RUNNING

    async def open(self, pod: str, query: LogQuery) -> EndlessLog:
        return self.log


async def test_a_client_that_stops_reading_stops_the_reads_from_kubernetes() -> None:
    cluster = Cluster()
    limits = StreamLimits(
        max_line_bytes=16384, lines_per_second=1e9, buffered_batches=4, poll_seconds=1
    )
    streamer = LogStreamer(cast(TrainingStore, None), cast(KubernetesLogs, cluster), limits)
    stream = streamer.stream(LogRequest("x", follow=True))
    first = await anext(stream)
    assert len(first.lines) == 64
    # The client reads no more for a while; the reading side may fill the
    # queue and hold one more read, then waits.
    for _ in range(100):
        await asyncio.sleep(0)
    assert cluster.log.reads <= limits.buffered_batches + 2
    await stream.aclose()


def test_lines_keep_to_the_rate_on_average_with_a_burst_of_one_seconds_worth() -> None:
    now = [0.0]
    pace = _Pace(100, clock=lambda: now[0])
    assert pace.wait_for(100) == 0  # a second's worth at once
    assert pace.wait_for(50) == 0.5  # then as they come back
    now[0] += 0.5
    assert pace.wait_for(50) == 0.5
    now[0] += 10
    assert pace.wait_for(100) == 0  # idle: the burst is back, not more
