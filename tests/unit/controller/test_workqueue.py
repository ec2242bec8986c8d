"""The work queue: each key once, never two workers on one key, urgent first."""

from __future__ import annotations

import asyncio

from trainconductor_controller.workqueue import WorkQueue


async def test_a_key_added_twice_is_processed_once() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_a_key_added_while_held_comes_back_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    held = await queue.get()
    queue.add("a")  # e.g. a Job event during the reconcile
    assert len(queue) == 0, "a second worker must not get the key it is held"
    queue.done(held)
    assert await queue.get() == "a"


async def test_urgent_keys_jump_the_queue() -> None:
    queue = WorkQueue()
    for key in ("pod-event-1", "pod-event-2", "submitted"):
        queue.add(key)
    queue.add("new-training", urgent=True)
    queue.add("submitted", urgent=True)  # already queued: moves ahead
    order = [await queue.get() for _ in range(4)]
    assert order == ["new-training", "submitted", "pod-event-1", "pod-event-2"]


async def test_a_failing_key_is_retried_with_growing_capped_delays() -> None:
    queue = WorkQueue(base_delay=0.01, max_delay=0.04)
    queue.add("a")
    delays = []
    for _ in range(4):
        key = await asyncio.wait_for(queue.get(), timeout=1)
        delays.append(queue.retry(key))
        queue.done(key)
    assert delays == [0.01, 0.02, 0.04, 0.04]
    queue.forget("a")
    assert await asyncio.wait_for(queue.get(), timeout=1) == "a"
