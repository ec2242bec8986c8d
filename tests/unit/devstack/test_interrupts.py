"""A bench stopped by SIGTERM stops what it started, as on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from devstack.cluster import ROOT

# A process that holds something until told to stop, and gives it back on
# the way out, as a bench holds its control plane in a `with` block.
_HOLDER = """
import sys, time
from devstack.interrupts import sigterm_as_interrupt
if sys.argv[2] == "taken":
    sigterm_as_interrupt()
try:
    print("holding", flush=True)
    time.sleep(60)
finally:
    open(sys.argv[1], "w").write("given back")
"""


def _stop_holder(tmp_path: Path, sigterm: str) -> tuple[int, bool]:
    """Starts the holder, sends it SIGTERM once it holds; its exit code and
    whether it gave back what it held."""
    given_back = tmp_path / "given-back"
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(given_back), sigterm],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,  # where `devstack` is imported from
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "holding"
            holder.send_signal(signal.SIGTERM)
            code = holder.wait(timeout=30)
        finally:
            holder.kill()  # a no-op once it has exited
    return code, given_back.exists()


def test_sigterm_lets_the_holder_give_back_what_it_started(tmp_path: Path) -> None:
    code, given_back = _stop_holder(tmp_path, "taken")
    assert given_back, "the finally block did not run on SIGTERM"
    assert code != 0  # stopped, not finished


def test_without_it_sigterm_skips_the_way_out(tmp_path: Path) -> None:
    # Why the benches take it: Python's default ends the process at once.
    code, given_back = _stop_holder(tmp_path, "default")
    assert not given_back
    assert code == -signal.SIGTERM
