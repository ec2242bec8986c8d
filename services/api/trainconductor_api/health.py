"""Keeps `grpc.health.v1` in step with Redis, and turns it off to drain.

A Redis that is out of memory still serves reads, watches and cancels: the
API stays SERVING (NOT_SERVING would take every replica out of its Service
and stop those too), logs that new trainings are refused, and sets
`trainconductor_redis_full`; the chart's alert on Redis's memory warns
before it comes to that."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from grpc_health.v1 import health, health_pb2

from trainconductor_api import metrics
from trainconductor_core.errors import StoreUnavailable
from trainconductor_core.store import TrainingStore

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthReporter:
    """Reports SERVING for the overall server ("") and each service while
    Redis answers, NOT_SERVING while it does not, and NOT_SERVING for good
    once draining has begun."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        store: TrainingStore,
        services: Sequence[str],
        *,
        interval_seconds: float,
    ) -> None:
        self._servicer = servicer
        self._store = store
        self._names = ["", *services]
        self._interval = interval_seconds
        self._serving: bool | None = None
        self._full = False
        self._draining = False

    async def _set(self, serving: bool, why: str = "") -> None:
        if serving == self._serving:
            return
        self._serving = serving
        metrics.REDIS_UP.set(1 if serving else 0)
        for name in self._names:
            await self._servicer.set(name, SERVING if serving else NOT_SERVING)
        log.log(
            logging.INFO if serving else logging.WARNING,
            "health is now %s",
            "SERVING" if serving else "NOT_SERVING",
            extra={"why": why} if why else None,
        )

    async def probe_once(self) -> None:
        if self._draining:
            return
        timeout = max(self._interval, 1.0)
        try:
            await asyncio.wait_for(self._store.ping(), timeout=timeout)
            await self._set(True)
            self._note_room(await asyncio.wait_for(self._store.has_room(), timeout=timeout))
        except StoreUnavailable as err:  # its text names the error, never a secret
            await self._set(False, str(err))
        except TimeoutError:
            await self._set(False, f"Redis did not answer a PING within {timeout:g} s")

    def _note_room(self, has_room: bool) -> None:
        if has_room == (not self._full):
            return
        self._full = not has_room
        if self._full:
            log.warning(
                "Redis is out of memory (maxmemory reached): new trainings are refused "
                "with RESOURCE_EXHAUSTED; reads, watches and cancels go on"
            )
        else:
            log.info("Redis has room again: new trainings are accepted")

    async def run(self) -> None:
        while not self._draining:
            await self.probe_once()
            await asyncio.sleep(self._interval)

    async def drain(self) -> None:
        self._draining = True
        await self._set(False, "draining")
