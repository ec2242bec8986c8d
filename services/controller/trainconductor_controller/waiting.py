"""The trainings waiting in each queue, as the leader last reconciled them,
for the gauges of waiting trainings (by queue and reason) and of the oldest
wait in each queue. A new leader fills it again as it reconciles every
unfinished training (the first resync)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from trainconductor_controller import metrics


@dataclass(frozen=True)
class Wait:
    queue: str
    reason: str
    submitted_ms: int


class Waiting:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._waits: dict[str, Wait] = {}
        self._exported: set[tuple[str, str]] = set()
        self._queues: set[str] = set()

    def note(self, training_id: str, wait: Wait | None) -> None:
        """The training waits so (None: it does not wait in a queue)."""
        if wait is None:
            self._waits.pop(training_id, None)
        else:
            self._waits[training_id] = wait

    def counts(self) -> dict[tuple[str, str], int]:
        return dict(Counter((w.queue, w.reason) for w in self._waits.values()))

    def oldest_seconds(self) -> dict[str, float]:
        now_ms = self._clock() * 1000
        oldest: dict[str, int] = {}
        for wait in self._waits.values():
            oldest[wait.queue] = min(oldest.get(wait.queue, wait.submitted_ms), wait.submitted_ms)
        return {queue: max(now_ms - ms, 0.0) / 1000 for queue, ms in oldest.items()}

    def export(self) -> None:
        """Sets the gauges; a queue or reason nobody waits in any more goes to 0."""
        counts = self.counts()
        for key in self._exported - set(counts):
            metrics.QUEUE_WAITING.labels(*key).set(0)
        for key, count in counts.items():
            metrics.QUEUE_WAITING.labels(*key).set(count)
        self._exported |= set(counts)
        oldest = self.oldest_seconds()
        for queue in self._queues - set(oldest):
            metrics.QUEUE_OLDEST_WAITING_SECONDS.labels(queue).set(0)
        for queue, seconds in oldest.items():
            metrics.QUEUE_OLDEST_WAITING_SECONDS.labels(queue).set(seconds)
        self._queues |= set(oldest)
