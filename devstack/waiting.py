"""Waiting for a condition, with a deadline: never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float = 60,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Calls `check` until it returns something true, and returns that;
    past `timeout` seconds, fails naming `what` (and `describe()`, the
    state last seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\nlast seen: {describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(0.1)
