"""The leader's work: informers, change feed, periodic resync and workers
around one work queue of training ids."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from trainconductor_controller import metrics
from trainconductor_controller.changefeed import ChangeFeed
from trainconductor_controller.errors import NotLeader
from trainconductor_controller.health_server import Readiness
from trainconductor_controller.informer import (
    Informer,
    training_id_of,
    training_id_of_refusal,
    wait_synced,
)
from trainconductor_controller.kube import Kube
from trainconductor_controller.objects import slim_job, slim_pod, slim_refusal
from trainconductor_controller.reconciler import Reconciler
from trainconductor_controller.settings import ControllerSettings
from trainconductor_controller.workqueue import WorkQueue
from trainconductor_core.errors import TrainConductorError
from trainconductor_core.ids import created_ms
from trainconductor_core.phases import Phase
from trainconductor_core.store import TrainingStore

log = logging.getLogger(__name__)


class Controller:
    def __init__(
        self,
        settings: ControllerSettings,
        store: TrainingStore,
        kube: Kube,
        readiness: Readiness,
        *,
        is_leader: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._store = store
        self._kube = kube
        self._readiness = readiness
        self._is_leader = is_leader
        self.queue = WorkQueue(
            base_delay=settings.retry_base_seconds, max_delay=settings.retry_max_seconds
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()

        def enqueue_from_thread(training_id: str) -> None:
            loop.call_soon_threadsafe(self.queue.add, training_id)

        self.jobs = Informer(
            self._kube, "jobs", enqueue_from_thread, key_of=training_id_of, slim=slim_job
        )
        self.pods = Informer(
            self._kube, "pods", enqueue_from_thread, key_of=training_id_of, slim=slim_pod
        )
        self.refusals = Informer(
            self._kube,
            "events",
            enqueue_from_thread,
            key_of=training_id_of_refusal,
            slim=slim_refusal,
        )
        informers: list[Informer[Any]] = [self.jobs, self.pods, self.refusals]
        for informer in informers:
            informer.start()
        self._readiness.failing_watches = lambda: [i.resource for i in informers if not i.healthy]
        start = time.monotonic()
        while not await asyncio.to_thread(wait_synced, [self.jobs, self.pods], 5.0):
            log.warning("waiting for the Job and pod caches to sync")
        # The refusals only explain a wait, and a Role without Events (RBAC
        # made by hand) must not stop all work: waited for a while only, so
        # that a restart does not rewrite the reasons they gave.
        if not await asyncio.to_thread(wait_synced, [self.refusals], 10.0):
            log.warning("the pod refusals (Events) could not be listed; going on without")
        self._readiness.synced = True
        log.info("caches synced", extra={"seconds": round(time.monotonic() - start, 3)})

        self.feed = ChangeFeed(
            self._store,
            group=self._settings.consumer_group,
            consumer=self._settings.identity,
            enqueue=lambda training_id: self.queue.add(training_id, urgent=True),
            claim_idle_seconds=self._settings.change_claim_idle_seconds,
            # A blocking read must end well within the socket timeout, or a
            # quiet feed would look like Redis being down.
            block_ms=min(2000, int(self._settings.redis_socket_timeout_seconds * 500)),
        )
        self.reconciler = Reconciler(
            self._store,
            self._kube,
            self.jobs,
            self.pods,
            self.refusals,
            self._settings,
            is_leader=self._is_leader,
        )
        workers = [self._worker() for _ in range(self._settings.workers)]
        await asyncio.gather(
            self.feed.run(), self._resync_forever(), self._count_phases_forever(), *workers
        )

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            entries = self.feed.take(key)
            start = time.perf_counter()
            try:
                await self.reconciler.reconcile(key)
                await self.feed.ack(entries)
                self.queue.forget(key)
                metrics.RECONCILES.labels("success").inc()
            except NotLeader:
                metrics.RECONCILES.labels("not_leader").inc()
                self.feed.give_back(key, entries)
            except Exception as err:
                self.feed.give_back(key, entries)
                delay = self.queue.retry(key)
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
                self.queue.done(key)

    async def _resync_forever(self) -> None:
        while True:
            try:
                await self.full_resync()
            except Exception as err:  # noqa: BLE001 - the next round tries again
                log.warning("resync failed", extra={"error": str(err)[:300]})
            await asyncio.sleep(self._settings.resync_seconds)

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
                self.queue.add(training_id)
            unfinished += len(ids)
        with_jobs = self.jobs.training_ids()
        for training_id in with_jobs:
            self.queue.add(training_id)  # orphans, and finished trainings' Jobs
        log.info(
            "full resync queued trainings",
            extra={
                "unfinished": unfinished,
                "with_jobs": len(with_jobs),
                "seconds": round(time.monotonic() - start, 3),
            },
        )
        return unfinished
