"""A real Jaeger (v2, built by hack/tools/install.sh) receiving OTLP, with
its query API for reading traces back."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devstack.cluster import binary
from devstack.orphans import guarded
from devstack.ports import free_port
from devstack.processes import wait_http_ok

_CONFIG = """
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:{health}
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


class Jaeger:
    def __init__(self, work: Path, *, otlp_port: int = 0, query_port: int = 0) -> None:
        """Free loopback ports unless given (`make up` gives its own)."""
        work.mkdir(parents=True, exist_ok=True)
        self.otlp_port, self.query_port = otlp_port or free_port(), query_port or free_port()
        config = work / "jaeger.yaml"
        config.write_text(
            _CONFIG.format(
                health=free_port(),
                query=self.query_port,
                query_grpc=free_port(),
                otlp=self.otlp_port,
            )
        )
        log = work / "jaeger.log"
        self.process = subprocess.Popen(
            guarded([binary("jaeger"), "--config", str(config)]),
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C is for whoever started it
        )
        try:
            wait_http_ok(
                f"http://127.0.0.1:{self.query_port}/api/services",
                timeout=60,
                process=self.process,
                log=log,
            )
        except AssertionError:
            self.stop()
            raise

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    def trace(self, trace_id: str, *, wait_for: set[str], timeout: float = 30) -> dict[str, Any]:
        """The trace, once spans of every service in `wait_for` are in it."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.query_port}/api/traces/{trace_id}"
        found: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    data = json.load(response)["data"]
                found = data[0] if data else {}
            except urllib.error.HTTPError:
                found = {}
            services = {p["serviceName"] for p in found.get("processes", {}).values()}
            if wait_for <= services:
                return found
            time.sleep(0.5)
        raise AssertionError(f"trace {trace_id} lacks spans of {wait_for}; has {found!r:.500}")

    def traces(self, service: str, limit: int = 20) -> list[dict[str, Any]]:
        """The service's latest traces, newest first."""
        url = f"{self.ui}/api/traces?service={service}&limit={limit}"
        with urllib.request.urlopen(url, timeout=5) as response:
            data: list[dict[str, Any]] = json.load(response)["data"]
        return data

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its memory store has nothing to save
            self.process.wait(5)
