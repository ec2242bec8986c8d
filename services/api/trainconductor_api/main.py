"""Entry point: `trainconductor-api`. SIGTERM drains, then exits 0."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import uvloop

from trainconductor_api.listeners import PortInUse
from trainconductor_api.server import build_server
from trainconductor_api.settings import ApiSettings
from trainconductor_core.logs import configure_logging
from trainconductor_core.settings import SettingsError, load
from trainconductor_core.startup_objects import freeze_startup_objects
from trainconductor_core.tracing import configure_tracing

log = logging.getLogger("trainconductor_api")


async def serve(settings: ApiSettings, *, tracing: bool) -> None:
    api = build_server(settings, tracing=tracing)
    await api.start()
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", extra={"grace_seconds": settings.drain_seconds})
    await api.drain_and_stop()
    log.info("stopped")


def main() -> None:
    try:
        settings = load(ApiSettings)
    except SettingsError as err:  # the message, not a traceback, in `kubectl logs`
        sys.exit(f"trainconductor-api: {err}")
    configure_logging(settings.log_level, "api", tracing=settings.tracing_enabled)
    tracing = configure_tracing("trainconductor-api", settings)
    _warn_of_weak_security(settings)
    # uvloop: the event loop most asyncio servers run on, and a faster one
    # (docs/performance.md).
    try:
        uvloop.run(serve(settings, tracing=tracing))
    except PortInUse as err:
        sys.exit(f"trainconductor-api: {err}")


def _warn_of_weak_security(settings: ApiSettings) -> None:
    if not settings.authentication_enabled:
        log.warning(
            "authentication is OFF (auth_modes=none): any caller can act as any user and "
            "sees every training; for local development only"
        )
    elif not settings.tls_enabled and set(settings.auth_modes) & {"static-token", "token-review"}:
        log.warning(
            "bearer tokens are accepted over plaintext (no tls_cert_file): anyone on the "
            "network path can read and reuse them"
        )
    log.info(
        "security",
        extra={
            "auth_modes": settings.auth_modes,
            "tls": settings.tls_enabled,
            "mtls": settings.tls_client_ca_file is not None,
            "admin_groups": settings.admin_groups,
        },
    )


if __name__ == "__main__":
    main()
