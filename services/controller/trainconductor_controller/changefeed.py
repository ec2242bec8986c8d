"""The controller's side of the Redis change feed.

Entries are read through a consumer group and acknowledged only after the
training they name was reconciled, so a crash leaves them pending; pending
entries of a consumer that stopped are claimed after a while, and all of
them at once when this replica becomes leader.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from trainconductor_controller import metrics
from trainconductor_core.errors import StoreUnavailable
from trainconductor_core.record import Change
from trainconductor_core.store import TrainingStore

T = TypeVar("T")

log = logging.getLogger(__name__)

# The lag gauge is read once a second at most: in a burst the feed is read
# many times a second, and an XINFO for each read cost more than the read.
LAG_EVERY_SECONDS = 1.0


class ChangeFeed:
    def __init__(
        self,
        store: TrainingStore,
        *,
        group: str,
        consumer: str,
        enqueue: Callable[[str], None],  # called for urgent work
        claim_idle_seconds: float,
        block_ms: int = 2000,
    ) -> None:
        self._store = store
        self._group = group
        self._consumer = consumer
        self._enqueue = enqueue
        self._claim_idle_ms = int(claim_idle_seconds * 1000)
        self._block_ms = block_ms
        # Sets: a claim also takes back entries this replica holds already.
        self._unacked: dict[str, set[str]] = {}

    def take(self, training_id: str) -> list[str]:
        """The entries a reconcile of `training_id` will acknowledge."""
        return sorted(self._unacked.pop(training_id, ()))

    def give_back(self, training_id: str, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            self._unacked.setdefault(training_id, set()).update(entry_ids)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        await self._store.ack_changes(self._group, entry_ids)

    async def take_over(self) -> None:
        """Claims every pending entry: the previous leader is gone."""
        await _retrying(lambda: self._store.ensure_consumer_group(self._group))
        await self._claim(min_idle_ms=0)

    async def run(self) -> None:
        await self.take_over()
        loop = asyncio.get_running_loop()
        last_claim = loop.time()
        last_lag = -LAG_EVERY_SECONDS
        failures = 0
        while True:
            try:
                changes = await self._store.read_changes(
                    self._group, self._consumer, count=500, block_ms=self._block_ms
                )
                self._accept(changes)
                now = loop.time()
                if now - last_claim > self._claim_idle_ms / 1000:
                    await self._claim(self._claim_idle_ms)
                    last_claim = now
                if now - last_lag >= LAG_EVERY_SECONDS:
                    metrics.CHANGE_FEED_LAG.set(await self._store.change_feed_lag(self._group))
                    last_lag = now
                failures = 0
            except StoreUnavailable as err:
                failures += 1
                delay = min(0.1 * 2**failures, 5.0)
                log.warning("change feed unavailable", extra={"error": str(err), "retry_in": delay})
                await asyncio.sleep(delay)

    def _accept(self, changes: Sequence[Change]) -> None:
        for change in changes:
            self._unacked.setdefault(change.training_id, set()).add(change.entry_id)
            self._enqueue(change.training_id)

    async def _claim(self, min_idle_ms: int) -> None:
        """One pass over the pending entries, following Redis' cursor: a
        claim makes an entry idle no longer, but with `min_idle_ms` 0 it
        would match again, so starting over would never end."""
        after = "0-0"
        while True:
            claim = functools.partial(
                self._store.claim_stale_changes,
                self._group,
                self._consumer,
                min_idle_ms=min_idle_ms,
                after=after,
                count=500,
            )
            after, claimed = await _retrying(claim)
            self._accept(claimed)
            if after == "0-0":
                return


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """Calls until Redis answers; the feed has nothing better to do meanwhile."""
    failures = 0
    while True:
        try:
            return await call()
        except StoreUnavailable:
            failures += 1
            await asyncio.sleep(min(0.1 * 2**failures, 5.0))
