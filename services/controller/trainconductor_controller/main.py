"""Entry point: `trainconductor-controller`. SIGTERM gives the Lease up,
then exits 0; losing the Lease exits 3 at once (controller.py)."""

from __future__ import annotations

import asyncio
import logging
import sys

import uvloop

from trainconductor_controller.controller import build_controller
from trainconductor_controller.settings import ControllerSettings
from trainconductor_core.logs import configure_logging
from trainconductor_core.settings import SettingsError, load
from trainconductor_core.tracing import configure_tracing

log = logging.getLogger("trainconductor_controller")


def main() -> None:
    try:
        settings = load(ControllerSettings)
    except SettingsError as err:  # the message, not a traceback, in `kubectl logs`
        sys.exit(f"trainconductor-controller: {err}")
    configure_logging(settings.log_level, "controller", tracing=settings.tracing_enabled)
    configure_tracing("trainconductor-controller", settings)
    # uvloop, as the API: the controller's loop reads watch streams and
    # Redis replies for every training, and uvloop spends less of the CPU
    # doing it (docs/performance.md).
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(build_controller(settings, loop).run())
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
