"""The controller's change feed on a real Redis: a new leader takes over
what the last one read and never acknowledged."""

from __future__ import annotations

import asyncio

from devstack.specs import lora_spec
from trainconductor_controller.changefeed import ChangeFeed
from trainconductor_core.store import TrainingStore

GROUP = "controller"


async def test_a_new_leader_takes_over_every_pending_change_once(store: TrainingStore) -> None:
    """More pending entries than one claim takes (500): the take-over
    follows Redis' cursor to the end instead of claiming the first ones
    again and again, and holds each entry once."""
    await store.ensure_consumer_group(GROUP)
    made = [(await store.create(lora_spec(), owner="ada"))[0].id for _ in range(1100)]
    read = await store.read_changes(GROUP, "old-leader", count=2000, block_ms=None)
    assert len(read) == len(made)  # read, never acknowledged: the old leader died

    queued: list[str] = []
    feed = ChangeFeed(
        store, group=GROUP, consumer="new-leader", enqueue=queued.append, claim_idle_seconds=30
    )
    await asyncio.wait_for(feed.take_over(), timeout=20)
    assert sorted(queued) == sorted(made)
    # Again, before any reconcile took its entries: what it holds already it
    # holds once still (a periodic claim takes back its own entries too).
    await asyncio.wait_for(feed.take_over(), timeout=20)
    for training_id in made:
        assert len(feed.take(training_id)) == 1
    assert await store.change_feed_lag(GROUP) == len(made)  # acknowledged after reconciles
