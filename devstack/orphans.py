"""Child processes that die with the test run, even when it is killed."""

from __future__ import annotations

import shutil
import threading

# The kernel's parent-death signal, set by util-linux's `setpriv` right before
# it execs the command. Not a Popen(preexec_fn=...): that makes Python fork
# instead of vfork, and a fork taken while gRPC's threads run in this process
# can leave the child broken before its exec (seen in CI: redis-server never
# started, its log holding gRPC's "epoll_wait error: Bad file descriptor").
_SETPRIV = shutil.which("setpriv")


def die_with_parent(argv: list[str]) -> list[str]:
    """`argv` run so that the kernel sends it SIGTERM when the thread that
    started it ends."""
    if _SETPRIV is None:
        raise RuntimeError("setpriv is missing: apt-get install util-linux")
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]


def guarded(argv: list[str]) -> list[str]:
    """`die_with_parent(argv)` when called from the main thread, else `argv`:
    the kernel ties the signal to the starting *thread*, so a child started
    from a worker thread would be stopped as soon as that thread ends."""
    return die_with_parent(argv) if threading.current_thread() is threading.main_thread() else argv
