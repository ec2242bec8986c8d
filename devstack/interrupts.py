"""SIGTERM taken as Ctrl-C by the benches: stopped by a signal (a CI
timeout, `kill`), a bench stops what it started on its way out, as it does
on Ctrl-C. Otherwise the process ends at once, its `with` blocks and
`finally`s do not run, and the control plane kwokctl started (daemons of
their own) outlives it."""

from __future__ import annotations

import signal


def sigterm_as_interrupt() -> None:
    """From now on, SIGTERM raises KeyboardInterrupt in the main thread."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
