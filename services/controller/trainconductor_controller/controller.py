"""Builds the controller: the Kubernetes client, the store, the informers,
the change feed, the work queue, the reconciler, the leader elector and the
health server, each given what it needs whole; then runs it: a follower
until it holds the Lease, the leader's work from then on, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from trainconductor_controller import metrics
from trainconductor_controller.changefeed import ChangeFeed
from trainconductor_controller.health_server import HealthServer, Readiness
from trainconductor_controller.informer import (
    Informer,
    training_id_of,
    training_id_of_refusal,
    training_id_of_workload,
)
from trainconductor_controller.kube import Kube, api_client
from trainconductor_controller.leader import LeaderElector
from trainconductor_controller.leader_work import LeaderWork
from trainconductor_controller.objects import (
    Job,
    Pod,
    Refusal,
    Service,
    Workload,
    slim_job,
    slim_pod,
    slim_refusal,
    slim_service,
    slim_workload,
)
from trainconductor_controller.positions import QueuePositions
from trainconductor_controller.priorities import PriorityClasses
from trainconductor_controller.reconciler import Reconciler
from trainconductor_controller.retention import Retention
from trainconductor_controller.settings import ControllerSettings
from trainconductor_controller.stalls import Stalls
from trainconductor_controller.waiting import Waiting
from trainconductor_controller.workqueue import WorkQueue
from trainconductor_core.build_info import register_build_info
from trainconductor_core.errors import TrainConductorError
from trainconductor_core.store import TrainingStore, open_store

log = logging.getLogger(__name__)

EXIT_LOST_LEASE = 3


@dataclass
class Controller:
    settings: ControllerSettings
    store: TrainingStore
    kube: Kube
    readiness: Readiness
    health_server: HealthServer
    elector: LeaderElector
    # Set, from the elector's thread, once this replica holds the Lease.
    leading: asyncio.Event
    work: LeaderWork

    async def run(self) -> None:
        """Until SIGTERM or SIGINT: follows, then leads once it holds the
        Lease; stopping, it gives the Lease up."""
        self.health_server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        probe = asyncio.create_task(self._probe_forever())
        self.elector.start()
        log.info(
            "waiting to lead",
            extra={"identity": self.settings.identity, "lease": self.settings.lease_name},
        )
        waiting = [asyncio.create_task(stop.wait()), asyncio.create_task(self.leading.wait())]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if self.leading.is_set() and not stop.is_set():
            self.readiness.leading = True
            work = asyncio.create_task(self.work.run())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([work, stopping], return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                work.result()  # re-raises what ended the work
            work.cancel()
            # A moment for the reconciles in flight to wind down (not forever:
            # a Redis call caught mid-write may never finish); any that still
            # runs checks is_leader(), false from the release on, before acting.
            await asyncio.wait([work], timeout=2)
            await asyncio.to_thread(self.elector.release)
        probe.cancel()
        log.info("stopped")

    async def _probe_forever(self) -> None:
        """Keeps /readyz current: Redis and the Kubernetes API, every few seconds."""
        while True:
            try:
                await self.store.ping()
                self.readiness.redis = True
            except TrainConductorError:
                self.readiness.redis = False
            try:
                await asyncio.to_thread(self.kube.ping)
                self.readiness.kubernetes = True
            except TrainConductorError:
                self.readiness.kubernetes = False
            await asyncio.sleep(2)


def _lost_lease() -> None:
    """Called from the elector's thread: stop acting now, whatever is in flight."""
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_LOST_LEASE)


def _configure_kubernetes(s: ControllerSettings) -> client.ApiClient:
    return api_client(
        str(s.kubeconfig) if s.kubeconfig else None,
        # The workers, five watches (Jobs, pods, refusals, Services, Workloads), the
        # Lease, probes, queue positions.
        connections=s.workers + 8,
    )


def _configure_executor(loop: asyncio.AbstractEventLoop, s: ControllerSettings) -> None:
    # The Kubernetes client blocks, so its calls run in threads: one for each
    # worker, or workers queue behind asyncio's default of cores + 4 threads,
    # which holds Job creation below what the API server takes.
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=s.workers + 4, thread_name_prefix="kube")
    )


@dataclass(frozen=True)
class _Informers:
    jobs: Informer[Job]
    pods: Informer[Pod]
    refusals: Informer[Refusal]
    services: Informer[Service]
    workloads: Informer[Workload] | None  # with queues only

    def all(self) -> list[Informer[Any]]:
        found: list[Informer[Any]] = [self.jobs, self.pods, self.refusals, self.services]
        return found + ([self.workloads] if self.workloads else [])


def _configure_informers(
    kube: Kube, queue: WorkQueue, loop: asyncio.AbstractEventLoop, s: ControllerSettings
) -> _Informers:
    def enqueue_from_thread(training_id: str) -> None:  # called in an informer's thread
        # RuntimeError: the loop is closed, the controller is stopping.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.add_soon, training_id)

    workloads = (
        Informer(
            kube,
            "workloads",
            enqueue_from_thread,
            key_of=training_id_of_workload,
            slim=slim_workload,
        )
        if s.queues_enabled
        else None
    )
    return _Informers(
        jobs=Informer(kube, "jobs", enqueue_from_thread, key_of=training_id_of, slim=slim_job),
        pods=Informer(kube, "pods", enqueue_from_thread, key_of=training_id_of, slim=slim_pod),
        refusals=Informer(
            kube,
            "events",
            enqueue_from_thread,
            key_of=training_id_of_refusal,
            slim=slim_refusal,
        ),
        services=Informer(
            kube, "services", enqueue_from_thread, key_of=training_id_of, slim=slim_service
        ),
        workloads=workloads,
    )


def _configure_change_feed(
    store: TrainingStore, queue: WorkQueue, s: ControllerSettings
) -> ChangeFeed:
    return ChangeFeed(
        store,
        group=s.consumer_group,
        consumer=s.identity,
        enqueue=lambda training_id: queue.add(training_id, urgent=True),
        claim_idle_seconds=s.change_claim_idle_seconds,
        # A blocking read must end well within the socket timeout, or a
        # quiet feed would look like Redis being down.
        block_ms=min(2000, int(s.redis_socket_timeout_seconds * 500)),
    )


def _configure_retention(store: TrainingStore, s: ControllerSettings) -> Retention:
    return Retention(
        store,
        retention_seconds=s.retention_seconds,
        tombstone_seconds=s.retention_tombstone_seconds,
        interval_seconds=s.retention_interval_seconds,
        batch=s.retention_batch,
        rate_per_second=s.retention_rate_per_second,
    )


def _configure_elector(
    api: client.ApiClient,
    s: ControllerSettings,
    loop: asyncio.AbstractEventLoop,
    leading: asyncio.Event,
) -> LeaderElector:
    def started() -> None:  # called in the elector's thread
        loop.call_soon_threadsafe(leading.set)

    return LeaderElector(api, s, on_started=started, on_lost=_lost_lease)


def build_controller(settings: ControllerSettings, loop: asyncio.AbstractEventLoop) -> Controller:
    """The controller, wired to run on `loop`: the informers' and the
    elector's threads hand their news over to it."""
    api = _configure_kubernetes(settings)
    kube = Kube(api, settings.namespace)
    store = open_store(settings, finished_events_kept=settings.finished_events_kept)
    _configure_executor(loop, settings)
    queue = WorkQueue(
        base_delay=settings.retry_base_seconds,
        max_delay=settings.retry_max_seconds,
        coalesce_delay=settings.event_coalesce_seconds,
    )
    informers = _configure_informers(kube, queue, loop, settings)
    positions = (
        QueuePositions(
            kube,
            informers.workloads,
            queue.add,
            every_seconds=settings.queue_position_refresh_seconds,
        )
        if informers.workloads is not None
        else None
    )
    waiting = Waiting()
    leading = asyncio.Event()
    elector = _configure_elector(api, settings, loop, leading)
    reconciler = Reconciler(
        store,
        kube,
        informers.jobs,
        informers.pods,
        informers.refusals,
        settings,
        is_leader=elector.is_leader,
        workloads=informers.workloads,
        positions=positions,
        waiting=waiting,
        priorities=PriorityClasses(kube) if settings.queues_enabled else None,
        services=informers.services,
    )
    readiness = Readiness(
        failing_watches=lambda: [i.resource for i in informers.all() if not i.healthy]
    )
    work = LeaderWork(
        store,
        queue,
        _configure_change_feed(store, queue, settings),
        reconciler,
        readiness,
        jobs=informers.jobs,
        pods=informers.pods,
        refusals=informers.refusals,
        workers=settings.workers,
        resync_seconds=settings.resync_seconds,
        retention=_configure_retention(store, settings),
        stalls=Stalls(
            store,
            stall_seconds=settings.progress_stall_seconds,
            interval_seconds=settings.progress_stall_check_seconds,
        ),
        workloads=informers.workloads,
        positions=positions,
        waiting=waiting if settings.queues_enabled else None,
        services=informers.services,
    )
    register_build_info(metrics.registry, "controller")
    health_server = HealthServer(settings.http_port, readiness)
    return Controller(settings, store, kube, readiness, health_server, elector, leading, work)
