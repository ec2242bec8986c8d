"""A bench or a test run stopped by SIGTERM stops what it started, as on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


# A test session that holds a process through a fixture, as the suites hold
# Redis and the control plane, and a test that must not run once it is stopped.
_SESSION = """
import os, subprocess, time
from pathlib import Path
import pytest

@pytest.fixture
def service():
    process = subprocess.Popen(["sleep", "600"])
    Path(os.environ["HOLDING"]).write_text(str(process.pid))
    yield
    process.kill()
    process.wait()

def test_holds(service):
    time.sleep(600)

def test_next():
    Path(os.environ["NEXT"]).write_text("ran")
"""


def test_a_test_run_stopped_by_sigterm_tears_its_fixtures_down(tmp_path: Path) -> None:
    session = tmp_path / "test_session.py"
    session.write_text(_SESSION)
    holding, next_ran = tmp_path / "holding", tmp_path / "next-ran"
    command = [sys.executable, "-m", "pytest", "-p", "tests.support.interrupts"]
    command += ["-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path), str(session)]
    env = {**os.environ, "HOLDING": str(holding), "NEXT": str(next_ran)}
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) as run:
        try:
            deadline = time.monotonic() + 60
            while not holding.exists() or not holding.read_text():
                assert run.poll() is None, "the session ended before its fixture held anything"
                assert time.monotonic() < deadline, "the fixture did not start within 60 s"
                time.sleep(0.05)
            service = int(holding.read_text())
            run.send_signal(signal.SIGTERM)
            code = run.wait(timeout=60)
        finally:
            run.kill()  # a no-op once it has exited
    try:
        os.kill(service, 0)
    except ProcessLookupError:
        pass  # stopped and reaped by the fixture's teardown
    else:
        os.kill(service, signal.SIGKILL)
        raise AssertionError("the fixture's process outlived the session")
    assert code == pytest.ExitCode.INTERRUPTED
    assert not next_ran.exists(), "the session went on after SIGTERM"
