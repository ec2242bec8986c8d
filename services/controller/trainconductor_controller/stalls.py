"""Stalls: while it leads, the controller marks stalled each RUNNING
training whose trainer reported progress before and has not for longer
than the threshold (a hung collective, a dead data loader, a trainer stuck
in a retry loop): the pod still runs and uses its GPUs, and nothing else
would tell. A stalled training gets the condition Stalled and an event
(reason Stalled); the gauge counts them, and the chart alerts on it. Its
next report ends the stall (the store does it with the report).

A training that never reported is never stalled: its trainer may simply
not report. A pass looks only at the trainings whose last report is older
than the threshold (a range of one sorted set) and those stalled, so it
costs nothing for trainings that report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from trainconductor_controller import metrics
from trainconductor_core.errors import TrainConductorError
from trainconductor_core.store import TrainingStore

log = logging.getLogger(__name__)

_BATCH = 1000


class Stalls:
    def __init__(
        self,
        store: TrainingStore,
        *,
        stall_seconds: float,
        interval_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`stall_seconds`: how long a running training may go without a
        report (0: never stalled); `interval_seconds`: between passes."""
        self._store = store
        self._stall_seconds = stall_seconds
        self._interval = interval_seconds
        self._clock = clock
        self._sleep = sleep

    async def run(self) -> None:
        if self._stall_seconds <= 0:
            log.info("stall detection is off")
            return
        while True:
            try:
                await self.run_pass()
            except Exception as err:  # the next pass tries again
                log.warning(
                    "stall pass failed; the next one goes on",
                    extra={"error": str(err)[:300]},
                    exc_info=not isinstance(err, TrainConductorError),
                )
            await self._sleep(self._interval)

    async def run_pass(self) -> list[str]:
        """Marks the trainings stalled since the last pass; returns their ids."""
        cutoff_ms = int((self._clock() - self._stall_seconds) * 1000)
        candidates = await self._store.stall_candidates(reported_before_ms=cutoff_ms, count=_BATCH)
        marked = await self._store.mark_stalled(
            candidates,
            reported_before_ms=cutoff_ms,
            message=f"no progress report for over {_duration(self._stall_seconds)} while it runs",
        )
        for training_id in marked:
            log.warning("training stalled", extra={"training_id": training_id})
        metrics.STALLED.set(await self._store.count_stalled())
        return marked


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"
