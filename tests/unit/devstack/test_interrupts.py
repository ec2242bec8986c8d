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
# Redis and the control plane; a test that waits, in a coroutine (as most of
# the suites' tests run, on the session's event loop) or not; and a test that
# must not run once the session is stopped.
_SESSION = """
import asyncio, os, subprocess, time
from pathlib import Path
import pytest

@pytest.fixture(scope="session")
def service():
    process = subprocess.Popen(["sleep", "600"])
    Path(os.environ["HOLDING"]).write_text(str(process.pid))
    yield
    process.kill()
    process.wait()

def test_waits(service):
    Path(os.environ["WAITING"]).write_text("1")
    time.sleep(600)

async def test_waits_in_a_coroutine(service):
    Path(os.environ["WAITING"]).write_text("1")
    await asyncio.sleep(600)

def test_next():
    Path(os.environ["NEXT"]).write_text("ran")
"""


@pytest.mark.parametrize("waiting_test", ["test_waits", "test_waits_in_a_coroutine"])
def test_a_test_run_stopped_by_sigterm_tears_its_fixtures_down(
    tmp_path: Path, waiting_test: str
) -> None:
    session = tmp_path / "test_session.py"
    session.write_text(_SESSION)
    holding, waiting, next_ran = tmp_path / "holding", tmp_path / "waiting", tmp_path / "next"
    # The suites' own settings (their event loop's scope among them).
    command = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml")]
    command += ["-p", "tests.support.interrupts", "-p", "no:cacheprovider", "-q"]
    command += [f"{session}::{waiting_test}", f"{session}::test_next"]  # run in this order
    env = {**os.environ, "HOLDING": str(holding), "WAITING": str(waiting), "NEXT": str(next_ran)}
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) as run:
        try:
            deadline = time.monotonic() + 60
            while not waiting.exists():
                assert run.poll() is None, "the session ended before its test waited"
                assert time.monotonic() < deadline, "the test did not start within 60 s"
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
