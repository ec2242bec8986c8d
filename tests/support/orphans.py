"""Child processes that die with the test run, even when it is killed."""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the kernel sends SIGTERM when the thread
    that started the child ends; only right from the main thread."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def guard() -> Callable[[], None] | None:
    """`die_with_parent` when called from the main thread, else nothing: the
    kernel ties the signal to the starting *thread*, so a child started from
    a worker thread would be stopped as soon as that thread ends."""
    return die_with_parent if threading.current_thread() is threading.main_thread() else None
