"""Child processes that die with the test run, even when it is killed."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the kernel sends SIGTERM when we go."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
