"""Ids handed over from other threads reach the loop, all of them, in order."""

from __future__ import annotations

import asyncio
import threading

from trainconductor_controller.handoff import ThreadHandoff


async def test_every_id_from_every_thread_is_delivered_in_each_thread_s_order() -> None:
    loop = asyncio.get_running_loop()
    delivered: list[str] = []
    all_in = asyncio.Event()
    threads, per_thread = 4, 2_000

    def deliver(training_id: str) -> None:
        delivered.append(training_id)
        if len(delivered) == threads * per_thread:
            all_in.set()

    handoff = ThreadHandoff(loop, deliver)

    def informer(name: str) -> None:
        for i in range(per_thread):
            handoff.put(f"{name}-{i}")

    started = [threading.Thread(target=informer, args=(f"t{n}",)) for n in range(threads)]
    for thread in started:
        thread.start()
    await asyncio.wait_for(all_in.wait(), timeout=10)
    for thread in started:
        thread.join()
    assert len(delivered) == threads * per_thread
    for n in range(threads):
        mine = [i for i in delivered if i.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i}" for i in range(per_thread)]


async def test_an_id_handed_over_after_a_delivery_is_delivered_too() -> None:
    loop = asyncio.get_running_loop()
    delivered: asyncio.Queue[str] = asyncio.Queue()
    handoff = ThreadHandoff(loop, delivered.put_nowait)
    await asyncio.to_thread(handoff.put, "a")
    assert await asyncio.wait_for(delivered.get(), timeout=5) == "a"
    await asyncio.to_thread(handoff.put, "b")  # the list is empty again: a new wake-up
    assert await asyncio.wait_for(delivered.get(), timeout=5) == "b"


def test_an_id_handed_over_once_the_loop_is_closed_is_dropped_without_an_error() -> None:
    """A watch's last event can come while the controller stops."""
    loop = asyncio.new_event_loop()
    loop.close()
    delivered: list[str] = []
    ThreadHandoff(loop, delivered.append).put("a")
    assert delivered == []
