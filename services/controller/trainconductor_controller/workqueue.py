"""A work queue of training ids, in the manner of client-go's.

A key is queued at most once; a key added while a worker holds it is
processed again after, never by two workers at once; a failed key comes back
after a capped exponential backoff. Urgent keys (a user asked for something:
a new training, a cancellation) are taken before the rest (what Kubernetes
reported), so a burst of status updates never delays a submission. What
Kubernetes reports is queued a moment later (`add_soon`): the events of one
training that come together (a Job made, its pods scheduled and started,
all ranks of a gang) then make one reconcile instead of one each.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from trainconductor_controller import metrics


class WorkQueue:
    def __init__(
        self, *, base_delay: float = 0.05, max_delay: float = 30.0, coalesce_delay: float = 0.0
    ) -> None:
        self._queue: deque[str] = deque()
        self._urgent: deque[str] = deque()
        self._queued_at: dict[str, float] = {}
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._idle: deque[asyncio.Future[None]] = deque()  # workers waiting for a key
        self._base = base_delay
        self._max = max_delay
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._coalesce = coalesce_delay
        self._soon: dict[str, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._queue) + len(self._urgent)

    def add(self, key: str, *, urgent: bool = False) -> None:
        """Queues `key` unless it is queued already (callable from the loop only)."""
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued_at:
            if urgent and key in self._queue:
                self._queue.remove(key)
                self._urgent.append(key)
            return
        self._queued_at[key] = time.monotonic()
        (self._urgent if urgent else self._queue).append(key)
        metrics.QUEUE_ADDS.inc()
        metrics.QUEUE_DEPTH.set(len(self))
        self._wake_one()

    def _wake_one(self) -> None:
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():  # else its worker was cancelled while it waited
                waiter.set_result(None)
                return

    def add_soon(self, key: str) -> None:
        """Queues `key` after the coalescing delay, once for all the calls
        made meanwhile. Apart from a retry's backoff: news does not wait for it."""
        if self._coalesce <= 0:
            self.add(key)
            return
        if key in self._soon:
            return

        def fire() -> None:
            del self._soon[key]
            self.add(key)

        self._soon[key] = asyncio.get_running_loop().call_later(self._coalesce, fire)

    def add_after(self, key: str, delay: float) -> None:
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_later(delay, fire)

    async def get(self) -> str:
        while not (self._urgent or self._queue):
            # A woken worker can find the queue empty again: a worker that
            # was not waiting took the key first. It waits once more.
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the key is another's
                raise
        key = self._urgent.popleft() if self._urgent else self._queue.popleft()
        metrics.QUEUE_DEPTH.set(len(self))
        metrics.QUEUE_WAIT_SECONDS.observe(time.monotonic() - self._queued_at.pop(key))
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def retry(self, key: str) -> float:
        """Queues `key` again after its backoff; returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay: float = min(self._base * 2**failures, self._max)
        metrics.QUEUE_RETRIES.inc()
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)
