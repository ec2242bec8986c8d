"""A real Redis Sentinel (`redis-server --sentinel`) watching one master."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from devstack.orphans import guarded
from devstack.ports import free_port
from devstack.processes import end
from devstack.redis_server import RedisServer


class RedisSentinel:
    def __init__(
        self,
        data_dir: Path,
        master: RedisServer,
        *,
        master_port: int | None = None,
        name: str = "mymaster",
        conf: str = "",
    ) -> None:
        """`master_port`: where to reach the master (its TLS port, say);
        `conf`: more lines of sentinel.conf (TLS, say)."""
        self.binary = master.binary
        self.data_dir = data_dir
        self.master_port = master_port or master.port
        self.name = name
        self.conf = conf
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, client: redis.Redis | None = None) -> None:
        """Starts it and waits until it names the master; `client` asks it
        (a plain one on its port unless given)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "sentinel.conf"  # Sentinel rewrites it: its own copy
        conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            "protected-mode no\n"
            f"dir {self.data_dir}\n"
            f"{self.conf}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.master_port} 1\n"
        )
        log = (self.data_dir / "sentinel.log").open("ab")
        self.process = subprocess.Popen(
            guarded([self.binary, str(conf), "--sentinel"]), stdout=log, stderr=subprocess.STDOUT
        )
        client = client or redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.sentinel_get_master_addr_by_name(self.name):
                    return
            except redis.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.data_dir / "sentinel.log").read_text()[-2000:]
                raise RuntimeError(f"redis-sentinel did not start:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        end(self.process)
        self.process = None
