"""Which of Kueue's WorkloadPriorityClasses exist, for the trainings that
name one: Kueue makes no Workload for a Job whose priority class is
missing, and says so nowhere a user looks, so the controller says it.

The names are listed again at most once per `min_interval_seconds` while a
training names one not seen (classes are rarely deleted, and a class seen
once is taken to exist until the next listing). A failed listing is
unknown: no class is called missing on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from trainconductor_controller.errors import KubernetesError
from trainconductor_controller.kube import Kube

log = logging.getLogger(__name__)


class PriorityClasses:
    def __init__(
        self,
        kube: Kube,
        *,
        min_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._min_interval = min_interval_seconds
        self._clock = clock
        self._names: set[str] | None = None
        self._listed_at = -float("inf")
        self._lock = asyncio.Lock()

    async def missing(self, name: str) -> bool:
        """Known not to exist: absent from a listing made now or at most
        `min_interval_seconds` ago."""
        if self._names is not None and name in self._names:
            return False
        async with self._lock:
            if self._clock() - self._listed_at >= self._min_interval:
                self._listed_at = self._clock()
                try:
                    self._names = await asyncio.to_thread(self._kube.workload_priority_classes)
                except KubernetesError as err:
                    log.warning(
                        "could not list Kueue's WorkloadPriorityClasses",
                        extra={"error": str(err)[:200]},
                    )
                    self._names = None
            return self._names is not None and name not in self._names
