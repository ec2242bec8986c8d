"""The services as real processes, as they run in production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.orphans import guarded
from devstack.waiting import wait_for


class Service:
    """One service process with its log file; stopped by signal."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.module = module
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.http_port = 0  # its metrics and health port, when it has one

    def start(self) -> Service:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            guarded([sys.executable, "-m", self.module]),
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C is for whoever started it
        )
        return self

    def signal(self, sig: int) -> int | None:
        """Sends `sig` and waits for the exit; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        code = self.process.wait(30)
        return code

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def stop(self) -> int | None:
        return self.signal(signal.SIGTERM)

    def wait_http_ok(self, url: str, timeout: float = 30) -> None:
        """Waits for this service to answer 200 on `url`; a service that exits
        first fails the wait at once, with the end of its log."""
        wait_http_ok(url, timeout, process=self.process, log=self.log_path)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, *texts: str, timeout: float = 10) -> str:
        """Waits until one of `texts` is in the log and returns the log. A
        running service writes its lines below WARNING a moment later, not
        at once, so a line it has logged may not be in the file yet."""

        def logged() -> str:
            log = self.log_text()
            return log if any(text in log for text in texts) else ""

        what = f"{self.name} to log {' or '.join(map(repr, texts))}"
        return str(wait_for(what, logged, timeout, describe=self.log_tail))

    def stopped_log(self) -> str:
        """Stops the service and returns its whole log: every line it logged
        is written by the time it exits. For asserting what is not logged."""
        self.stop()
        return self.log_text()


def end(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """Sends `sig` to `process` if it still runs, and waits for its exit."""
    if process is not None and process.poll() is None:
        process.send_signal(sig)
        process.wait(10)


def answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_http_ok(
    url: str,
    timeout: float = 30,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Waits for `url` to answer 200; gives up at once, with the end of its
    `log`, when the `process` meant to answer has exited."""
    deadline = time.monotonic() + timeout
    while not answers_ok(url):
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log else ""
            raise AssertionError(f"the server of {url} exited with {process.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.1)
