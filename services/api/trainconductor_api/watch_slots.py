"""A bound on the watches one API process serves at once.

Each watch holds a pooled Redis connection while its read blocks. Unbounded,
a few hundred quiet watches would take every connection of the pool, and
every other call, health's included, would fail as if Redis were down.
"""

from __future__ import annotations


class WatchSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0

    def take(self) -> bool:
        """One slot if one is free. No await between the check and the count:
        the event loop runs one coroutine at a time, so none can slip in."""
        if self._open >= self.limit:
            return False
        self._open += 1
        return True

    def give_back(self) -> None:
        self._open -= 1
