"""The leader's work: its caches synced first, then workers reconcile the
trainings that the change feed, the informers and the periodic resync put
on one work queue of training ids. Built, whole, by controller.py."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from trainconductor_controller import metrics
from trainconductor_controller.changefeed import ChangeFeed
from trainconductor_controller.errors import NotLeader
from trainconductor_controller.health_server import Readiness
from trainconductor_controller.informer import Informer, wait_synced
from trainconductor_controller.objects import Job, Pod, Refusal, Service, Workload
from trainconductor_controller.positions import QueuePositions
from trainconductor_controller.reconciler import Reconciler
from trainconductor_controller.retention import Retention
from trainconductor_controller.stalls import Stalls
from trainconductor_controller.waiting import Waiting
from trainconductor_controller.workqueue import WorkQueue
from trainconductor_core.errors import TrainConductorError
from trainconductor_core.ids import created_ms
from trainconductor_core.phases import Phase
from trainconductor_core.store import TrainingStore

log = logging.getLogger(__name__)


class LeaderWork:
    def __init__(
        self,
        store: TrainingStore,
        queue: WorkQueue,
        feed: ChangeFeed,
        reconciler: Reconciler,
        readiness: Readiness,
        *,
        jobs: Informer[Job],
        pods: Informer[Pod],
        refusals: Informer[Refusal],
        workers: int,
        resync_seconds: float,
        retention: Retention,
        stalls: Stalls | None = None,
        workloads: Informer[Workload] | None = None,
        positions: QueuePositions | None = None,
        waiting: Waiting | None = None,
        services: Informer[Service] | None = None,
    ) -> None:
        """`jobs`, `pods`, `refusals` and `services` (the multi-node
        trainings' headless Services) fill the queue from their watches
        once started (and the reconciler reads their caches); `workers`:
        how many trainings are reconciled at once; `resync_seconds`: how
        often every unfinished training is queued (the safety net);
        `retention`: removes what finished long ago, while leading;
        `stalls`: marks the running trainings whose reports stopped. With
        queues: `workloads` (Kueue's Workloads, watched too), `positions`
        (read from Kueue's visibility API while the leader works) and
        `waiting` (the queue gauges, set with the phase counts)."""
        self._services = services
        self._workloads = workloads
        self._positions = positions
        self._waiting = waiting
        self._store = store
        self._queue = queue
        self._feed = feed
        self._reconciler = reconciler
        self._readiness = readiness
        self._jobs = jobs
        self._pods = pods
        self._refusals = refusals
        self._workers = workers
        self._resync_seconds = resync_seconds
        self._retention = retention
        self._stalls = stalls

    async def run(self) -> None:
        try:
            await self._sync_caches()
            workers = [self._worker() for _ in range(self._workers)]
            positions = [self._positions.run()] if self._positions else []
            stalls = [self._stalls.run()] if self._stalls else []
            await asyncio.gather(
                self._feed.run(),
                self._resync_forever(),
                self._count_phases_forever(),
                self._retention.run(),
                *positions,
                *stalls,
                *workers,
            )
        finally:
            # The watches end with the work: left running, their threads
            # would go on handing events to a loop that is being closed.
            for informer in self._informers():
                informer.stop()

    def _informers(self) -> list[Informer[Any]]:
        found = (self._jobs, self._pods, self._refusals, self._services, self._workloads)
        return [informer for informer in found if informer is not None]

    async def _sync_caches(self) -> None:
        """Starts the informers and waits for their first lists."""
        for informer in self._informers():
            informer.start()
        start = time.monotonic()
        while not await asyncio.to_thread(wait_synced, [self._jobs, self._pods], 5.0):
            log.warning("waiting for the Job and pod caches to sync")
        # The refusals only explain a wait, and a Role without Events (RBAC
        # made by hand) must not stop all work: waited for a while only, so
        # that a restart does not rewrite the reasons they gave.
        if not await asyncio.to_thread(wait_synced, [self._refusals], 10.0):
            log.warning("the pod refusals (Events) could not be listed; going on without")
        # A Service missing from the cache is made again (AlreadyExists):
        # waited for a while only, as the refusals.
        if self._services is not None and not await asyncio.to_thread(
            wait_synced, [self._services], 10.0
        ):
            log.warning("the headless Services could not be listed; going on without")
        # Without the Workloads, a queued training reads as waiting for
        # Kueue to take it up, and holds wait: nothing is lost meanwhile.
        if self._workloads is not None and not await asyncio.to_thread(
            wait_synced, [self._workloads], 10.0
        ):
            log.warning("Kueue's Workloads could not be listed yet (is Kueue installed?)")
        self._readiness.synced = True
        log.info("caches synced", extra={"seconds": round(time.monotonic() - start, 3)})

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            entries = self._feed.take(key)
            start = time.perf_counter()
            try:
                await self._reconciler.reconcile(key)
                await self._feed.ack(entries)
                self._queue.forget(key)
                metrics.RECONCILES.labels("success").inc()
            except NotLeader:
                metrics.RECONCILES.labels("not_leader").inc()
                self._feed.give_back(key, entries)
            except Exception as err:
                self._feed.give_back(key, entries)
                delay = self._queue.retry(key)
                metrics.RECONCILES.labels("error").inc()
                log.warning(
                    "reconcile failed; will retry",
                    extra={"training_id": key, "error": str(err)[:300], "retry_in": delay},
                    # A traceback only for the unforeseen: a refused Job or an
                    # unreachable Redis is told by its message, every retry.
                    exc_info=not isinstance(err, TrainConductorError),
                )
            finally:
                metrics.RECONCILE_SECONDS.observe(time.perf_counter() - start)
                self._queue.done(key)

    async def _resync_forever(self) -> None:
        while True:
            try:
                await self.full_resync()
            except Exception as err:  # noqa: BLE001 - the next round tries again
                log.warning("resync failed", extra={"error": str(err)[:300]})
            await asyncio.sleep(self._resync_seconds)

    async def _count_phases_forever(self, every_seconds: float = 15.0) -> None:
        """Keeps the trainings-by-phase gauge current (cheap: one ZCARD each),
        and the age of the oldest PENDING training (one ZRANGE)."""
        while True:
            try:
                for phase, count in (await self._store.count_by_phase()).items():
                    metrics.TRAININGS.labels(phase).set(count)
                oldest = await self._store.oldest_in_phase(Phase.PENDING)
                age = time.time() - created_ms(oldest) / 1000 if oldest else 0.0
                metrics.OLDEST_PENDING_SECONDS.set(max(age, 0.0))
                if self._waiting is not None:
                    self._waiting.export()
            except TrainConductorError as err:
                log.warning("could not count trainings by phase", extra={"error": str(err)})
            await asyncio.sleep(every_seconds)

    async def full_resync(self) -> int:
        """Queues every unfinished training and every training with a Job;
        returns how many unfinished ones there are."""
        start = time.monotonic()
        unfinished = 0
        async for ids in self._store.unfinished_ids(batch=1000):
            for training_id in ids:
                self._queue.add(training_id)
            unfinished += len(ids)
        with_jobs = self._jobs.training_ids()
        for training_id in with_jobs:
            self._queue.add(training_id)  # orphans, and finished trainings' Jobs
        log.info(
            "full resync queued trainings",
            extra={
                "unfinished": unfinished,
                "with_jobs": len(with_jobs),
                "seconds": round(time.monotonic() - start, 3),
            },
        )
        return unfinished
