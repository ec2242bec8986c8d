"""Training ids handed from the informers' threads to the event loop.

Each hand-over to the loop from another thread (`call_soon_threadsafe`)
wakes it with a write to its self-pipe. A burst brings thousands of watch
events a second, so the ids wait in a list and one wake-up delivers every
id handed over until the loop ran it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class ThreadHandoff:
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[str], None]) -> None:
        """`deliver` is called in the loop, once for each id handed over, in order."""
        self._loop = loop
        self._deliver = deliver
        self._lock = threading.Lock()
        self._ids: list[str] = []

    def put(self, training_id: str) -> None:
        """Callable from any thread."""
        with self._lock:
            self._ids.append(training_id)
            if len(self._ids) > 1:
                return  # a delivery is scheduled and has not yet run
        try:
            self._loop.call_soon_threadsafe(self._deliver_all)
        except RuntimeError:  # the loop is closed: the controller is stopping
            return

    def _deliver_all(self) -> None:
        with self._lock:
            ids, self._ids = self._ids, []
        for training_id in ids:
            self._deliver(training_id)
