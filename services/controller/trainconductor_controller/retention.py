"""Retention: while it leads, the controller removes the trainings that
finished more than the retention period ago, with everything of them, so
that Redis does not grow for ever.

A pass walks the final phases' indexes from their oldest ids to those of
trainings recorded by the cutoff (a training finishes after it is
recorded): what finished long ago is found without a look at anything
else. Each training goes in one script, which reads again whether and when
it finished, so an unfinished one is never touched and a removal is whole
or not at all. The work is cut in batches at a bounded rate, leaving Redis
to the API. Nothing of a pass is kept: a leader that stopped in the middle
of one leaves the rest to the next pass, of whichever leader.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from trainconductor_controller import metrics
from trainconductor_core.errors import TrainConductorError
from trainconductor_core.phases import FINAL_PHASES
from trainconductor_core.store import Removal, TrainingStore

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    removed: int = 0
    kept: int = 0  # finished after the cutoff, though recorded before it
    gone: int = 0  # index entries of trainings that were no longer there
    batches: int = 0
    seconds: float = 0.0


class Retention:
    def __init__(
        self,
        store: TrainingStore,
        *,
        retention_seconds: int,
        tombstone_seconds: int,
        interval_seconds: float,
        batch: int,
        rate_per_second: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`retention_seconds`: how long a training stays after it finished
        (0: for ever); `tombstone_seconds`: how long a removed one's id is
        remembered; `batch` and `rate_per_second` bound the work; `sleep`
        paces it (a seam for the tests, as `clock` is)."""
        self._store = store
        self._retention_seconds = retention_seconds
        self._tombstone_seconds = tombstone_seconds
        self._interval = interval_seconds
        self._batch = batch
        self._rate = rate_per_second
        self._clock = clock
        self._sleep = sleep

    @property
    def enabled(self) -> bool:
        return self._retention_seconds > 0

    async def run(self) -> None:
        """A pass every interval, for as long as the leader runs it."""
        if not self.enabled:
            log.info("retention is off: finished trainings are kept for ever")
            return
        while True:
            try:
                await self.run_pass()
            except Exception as err:  # the next pass tries again
                log.warning(
                    "retention pass failed; the next one goes on",
                    extra={"error": str(err)[:300]},
                    # A traceback only for the unforeseen: Redis down is told by its message.
                    exc_info=not isinstance(err, TrainConductorError),
                )
            await self._sleep(self._interval)

    async def run_pass(self) -> PassResult:
        """Removes every training that finished at least the retention
        period ago; returns what it did."""
        result = PassResult()
        if not self.enabled:
            return result
        start = time.monotonic()
        cutoff_ms = int((self._clock() - self._retention_seconds) * 1000)
        for phase in sorted(FINAL_PHASES):
            after = ""
            while ids := await self._store.finished_ids(
                phase, recorded_by_ms=cutoff_ms, after=after, count=self._batch
            ):
                batch_start = time.monotonic()
                outcomes = await self._store.remove_finished(
                    phase, ids, finished_by_ms=cutoff_ms, tombstone_seconds=self._tombstone_seconds
                )
                removed = outcomes.count(Removal.REMOVED)
                result.removed += removed
                result.kept += outcomes.count(Removal.KEPT)
                result.gone += outcomes.count(Removal.GONE)
                result.batches += 1
                metrics.RETENTION_REMOVED.inc(removed)
                after = ids[-1]
                # At most `rate` trainings a second, whatever a batch cost.
                pause = len(ids) / self._rate - (time.monotonic() - batch_start)
                await self._sleep(max(pause, 0.0))
        result.seconds = time.monotonic() - start
        metrics.RETENTION_PASS_SECONDS.observe(result.seconds)
        metrics.RETENTION_LAST_PASS.set(time.time())
        log.info(
            "retention pass done",
            extra={
                "removed": result.removed,
                "kept": result.kept,
                "gone": result.gone,
                "batches": result.batches,
                "seconds": round(result.seconds, 3),
                "finished_before_ms": cutoff_ms,
            },
        )
        return result
