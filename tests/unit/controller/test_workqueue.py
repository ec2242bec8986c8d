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


async def test_news_coming_together_is_queued_once_a_moment_later() -> None:
    queue = WorkQueue(coalesce_delay=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):  # the Job made, its pod scheduled, its pod running
        queue.add_soon("a")
    queue.add_soon("b")
    assert len(queue) == 0, "news waits for the rest of what comes with it"
    assert await asyncio.wait_for(queue.get(), timeout=1) == "a"
    assert loop.time() - start >= 0.05
    queue.done("a")
    assert await asyncio.wait_for(queue.get(), timeout=1) == "b"
    queue.done("b")
    queue.add("c")
    assert await queue.get() == "c", "'a' must have been queued once, not once per event"


async def test_news_does_not_wait_for_a_retry_backoff() -> None:
    queue = WorkQueue(base_delay=30, coalesce_delay=0.01)
    queue.add("a")
    key = await queue.get()
    assert queue.retry(key) == 30
    queue.done(key)
    queue.add_soon("a")  # its Job changed: reconciled now, not in 30 s
    assert await asyncio.wait_for(queue.get(), timeout=5) == "a"


async def test_without_a_coalescing_delay_news_is_queued_at_once() -> None:
    queue = WorkQueue()
    queue.add_soon("a")
    assert len(queue) == 1


async def test_an_idle_worker_gets_a_key_added_later_and_a_cancelled_one_takes_none() -> None:
    queue = WorkQueue()
    cancelled = asyncio.create_task(queue.get())
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # both wait for a key
    cancelled.cancel()
    queue.add("a")
    assert await asyncio.wait_for(waiting, timeout=1) == "a"
    assert cancelled.cancelled()


async def test_a_worker_woken_then_cancelled_passes_its_key_on() -> None:
    queue = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")  # wakes the first worker, which is cancelled before it runs
    first.cancel()
    assert await asyncio.wait_for(second, timeout=1) == "a"


async def test_each_idle_worker_gets_a_key_of_its_own() -> None:
    queue = WorkQueue()
    workers = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for key in ("a", "b", "c"):
        queue.add(key)
    assert sorted(await asyncio.wait_for(asyncio.gather(*workers), timeout=1)) == ["a", "b", "c"]
