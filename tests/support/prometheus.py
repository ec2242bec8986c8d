"""A real Prometheus (Debian's) scraping the services, and its query API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.processes import wait_http_ok


class Prometheus:
    def __init__(
        self, work: Path, targets: dict[str, str], labels: dict[str, str] | None = None
    ) -> None:
        """Scrapes each job's target every second, adding `labels` (the
        namespace, say, which Kubernetes service discovery would add)."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(
                "prometheus is not installed: run `make deps` (apt-get install prometheus)"
            )
        self.port = free_port()
        work.mkdir(parents=True, exist_ok=True)
        config = work / "prometheus.yml"
        pairs = ", ".join(f"{k}: '{v}'" for k, v in (labels or {}).items())
        extra = f"\n        labels: {{{pairs}}}" if pairs else ""
        jobs = "\n".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']{extra}"
            for job, target in targets.items()
        )
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
            + jobs
            + "\n"
        )
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=(work / "prometheus.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_http_ok(f"http://127.0.0.1:{self.port}/-/ready", timeout=60)

    def query(self, expression: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expression}
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expression: str, timeout: float = 30) -> float:
        """The expression's single value, once Prometheus has one."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expression)
            if result:
                return float(result[0]["value"][1])
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus has no value for {expression}")
            time.sleep(0.5)

    def has_data(self, expression: str, timeout: float = 20) -> bool:
        """Whether the expression returns anything within `timeout` (a rate
        needs two scrapes of a series before it has a value)."""
        deadline = time.monotonic() + timeout
        while not self.query(expression):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
