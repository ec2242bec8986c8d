"""Entry point: `trainconductor-controller`."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from trainconductor_controller.controller import Controller
from trainconductor_controller.health_server import Readiness, serve
from trainconductor_controller.kube import Kube, api_client
from trainconductor_controller.leader import LeaderElector
from trainconductor_controller.settings import ControllerSettings
from trainconductor_core import build_info
from trainconductor_core.errors import TrainConductorError
from trainconductor_core.logs import configure_logging
from trainconductor_core.settings import SettingsError, load
from trainconductor_core.store import TrainingStore, open_store
from trainconductor_core.tracing import configure_tracing

log = logging.getLogger("trainconductor_controller")

EXIT_LOST_LEASE = 3


def _lost_lease() -> None:
    """Called from the elector's thread: stop acting now, whatever is in flight."""
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_LOST_LEASE)


async def _probe(store: TrainingStore, kube: Kube, readiness: Readiness) -> None:
    """Keeps /readyz current: Redis and the Kubernetes API, every few seconds."""
    while True:
        try:
            await store.ping()
            readiness.redis = True
        except TrainConductorError:
            readiness.redis = False
        try:
            await asyncio.to_thread(kube.ping)
            readiness.kubernetes = True
        except TrainConductorError:
            readiness.kubernetes = False
        await asyncio.sleep(2)


async def run(settings: ControllerSettings) -> None:
    api = api_client(
        str(settings.kubeconfig) if settings.kubeconfig else None,
        # The workers, three watches (Jobs, pods, refusals), the Lease, probes.
        connections=settings.workers + 6,
    )
    kube = Kube(api, settings.namespace)
    store = open_store(settings)
    readiness = Readiness()
    serve(settings.http_port, readiness)
    loop = asyncio.get_running_loop()
    # The Kubernetes client blocks, so its calls run in threads: one for each
    # worker, or workers queue behind asyncio's default of cores + 4 threads,
    # which holds Job creation below what the API server takes.
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=settings.workers + 4, thread_name_prefix="kube")
    )
    stop = asyncio.Event()
    leading = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def started() -> None:  # called in the elector's thread
        loop.call_soon_threadsafe(leading.set)

    elector = LeaderElector(
        api,
        settings,
        on_started=started,
        on_lost=_lost_lease,
    )
    probe = asyncio.create_task(_probe(store, kube, readiness))
    elector.start()
    log.info("waiting to lead", extra={"identity": settings.identity, "lease": settings.lease_name})
    waiting = [asyncio.create_task(stop.wait()), asyncio.create_task(leading.wait())]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if leading.is_set() and not stop.is_set():
        readiness.leading = True
        controller = Controller(settings, store, kube, readiness, is_leader=elector.is_leader)
        work = asyncio.create_task(controller.run())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([work, stopping], return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            work.result()  # re-raises what ended the work
        work.cancel()
        # A moment for the reconciles in flight to wind down (not forever:
        # a Redis call caught mid-write may never finish); any that still
        # runs checks is_leader(), false from the release on, before acting.
        await asyncio.wait([work], timeout=2)
        await asyncio.to_thread(elector.release)
    probe.cancel()
    log.info("stopped")


def main() -> None:
    try:
        settings = load(ControllerSettings)
    except SettingsError as err:  # the message, not a traceback, in `kubectl logs`
        sys.exit(f"trainconductor-controller: {err}")
    configure_logging(settings.log_level, "controller", tracing=settings.tracing_enabled)
    configure_tracing("trainconductor-controller", settings)
    from trainconductor_controller import metrics

    build_info.register_build_info(metrics.registry, "controller")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run(settings))
    finally:
        _close(loop)


def _close(loop: asyncio.AbstractEventLoop, grace_seconds: float = 5.0) -> None:
    """asyncio.run's teardown, with a deadline: it waits for every task left
    to end, and under load a task has been seen to wait forever on a Redis
    write cut off by the cancellation, so that a stopped controller never
    exited. What is left after the grace is abandoned: the work is idempotent
    and a change is acknowledged only once it was done."""
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    if left:
        _, stuck = loop.run_until_complete(asyncio.wait(left, timeout=grace_seconds))
        if stuck:
            names = sorted(getattr(t.get_coro(), "__qualname__", "?") for t in stuck)
            log.warning("tasks still running at exit; leaving them", extra={"tasks": names})
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


if __name__ == "__main__":
    main()
