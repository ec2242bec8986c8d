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

import yaml

from devstack.cluster import ROOT
from devstack.cluster import binary as binary_of
from devstack.orphans import guarded
from devstack.ports import free_port
from devstack.processes import wait_http_ok


class Prometheus:
    def __init__(
        self,
        work: Path,
        targets: dict[str, str],
        labels: dict[str, str] | None = None,
        *,
        port: int = 0,
        rule_files: tuple[Path, ...] = (),
        scrape_seconds: float = 1,
    ) -> None:
        """Scrapes each job's target every `scrape_seconds`, adding `labels`
        (the namespace, say, which Kubernetes service discovery would add),
        and evaluates the alerting rules of `rule_files`. A free loopback
        port unless `port` is given."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError(
                "prometheus is not installed: run `make deps` (apt-get install prometheus)"
            )
        self.port = port or free_port()
        work.mkdir(parents=True, exist_ok=True)
        config = work / "prometheus.yml"
        pairs = ", ".join(f"{k}: '{v}'" for k, v in (labels or {}).items())
        extra = f"\n        labels: {{{pairs}}}" if pairs else ""
        jobs = "\n".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']{extra}"
            for job, target in targets.items()
        )
        rules = "".join(f"\n  - {path}" for path in rule_files)
        config.write_text(
            f"global:\n  scrape_interval: {scrape_seconds}s\n"
            f"  evaluation_interval: {scrape_seconds}s\n"
            + (f"rule_files:{rules}\n" if rules else "")
            + "scrape_configs:\n"
            + jobs
            + "\n"
        )
        log = work / "prometheus.log"
        self.process = subprocess.Popen(
            guarded([
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ]),
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C is for whoever started it
        )  # fmt: skip
        try:
            wait_http_ok(self.url + "/-/ready", timeout=60, process=self.process, log=log)
        except AssertionError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def render_alert_rules(dest: Path, release: str, namespace: str) -> Path:
    """The chart's PrometheusRule rendered by Helm for a release in a
    namespace, written as a Prometheus rule file."""
    rendered = subprocess.run(
        [
            binary_of("helm"), "template", release, str(ROOT / "helm" / "train-conductor"),
            "--namespace", namespace,
            # The alerts select the job names the ServiceMonitors give.
            "--set", "prometheusRule.enabled=true",
            "--set", "api.serviceMonitor.enabled=true",
            "--set", "controller.serviceMonitor.enabled=true",
            "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
            "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
        ],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    if rendered.returncode != 0:
        raise RuntimeError(f"helm template failed: {rendered.stderr.strip()[-500:]}")
    spec = next(
        doc["spec"]
        for doc in yaml.safe_load_all(rendered.stdout)
        if doc and doc.get("kind") == "PrometheusRule"
    )
    dest.write_text(yaml.safe_dump(spec))
    return dest
