"""A real `redis-server` on a free loopback port, with AOF persistence, that
a test can stop and start again on the same port and data."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from devstack.orphans import guarded
from devstack.ports import free_port
from devstack.processes import end


class RedisServer:
    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = (), port: int = 0) -> None:
        """`extra_args`: more of redis-server's options (a TLS port, say); a
        free loopback port unless `port` is given."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: run `make test` (it installs it) or "
                "`apt-get install redis-server`"
            )
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            guarded([
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--protected-mode", "no",
                *self.extra_args,
            ]),
            stdin=subprocess.DEVNULL,
            stdout=(self.data_dir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C is for whoever started it
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.data_dir / "redis.log").read_text()[-2000:]
                    raise RuntimeError(f"redis-server did not start:\n{log}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        end(self.process)
        self.process = None

    def kill(self) -> None:
        end(self.process, signal.SIGKILL)
        self.process = None
