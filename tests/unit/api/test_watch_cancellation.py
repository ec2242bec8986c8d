"""A watch ends when its call is cancelled, even when the cancellation lands
just as a Redis command finishes sending: Python 3.11's `asyncio.wait_for`
(which redis-py sends through) then returns the result and drops the
cancellation, and a watch that did not check would run until the server
stops."""

from __future__ import annotations

import asyncio

from trainconductor_api.service import _stop_if_cancelled


async def _watch_step(sent: asyncio.Future[None]) -> None:
    await asyncio.wait_for(sent, timeout=5)  # as redis-py sends a command
    _stop_if_cancelled()


def test_a_cancellation_landing_as_a_send_completes_ends_the_watch() -> None:
    async def scenario() -> asyncio.Task[None]:
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        watch = asyncio.create_task(_watch_step(sent))
        await asyncio.sleep(0)  # the watch is now waiting on the send
        sent.set_result(None)  # the send completes ...
        watch.cancel()  # ... in the same turn as the client cancels
        await asyncio.wait([watch], timeout=5)
        return watch

    watch = asyncio.run(scenario())
    assert watch.done()
    assert watch.cancelled()


def test_an_uncancelled_watch_goes_on() -> None:
    async def scenario() -> None:
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sent.set_result(None)
        await _watch_step(sent)

    asyncio.run(scenario())  # no CancelledError
