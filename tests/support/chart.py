"""The Helm chart as the tests read it: `helm template` and `helm` runs with
the binary `make tools` builds, the ci/*-values.yaml scenarios and the values
they amount to, and what a rendered manifest says about the services."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.cluster import ROOT, binary

CHART = ROOT / "helm" / "train-conductor"
SCENARIO_FILES = sorted(CHART.glob("ci/*-values.yaml"))
RELEASE = "tc"
MONITORING_APIS = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)
ALLOW_NONE = ("--set", "auth.allowInsecureNone=true")
NONE = ("--set", "auth.modes={none}", *ALLOW_NONE)
STATIC_TOKENS = ("--set", "auth.staticTokens.existingSecret=tokens")
# Logs read from pods: the API gets a token for that too.
NO_POD_LOGS = ("--set", "logs.fromPods=false")

Manifest = dict[str, Any]


def helm(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    config = ("--kubeconfig", str(kubeconfig)) if kubeconfig else ()
    return subprocess.run(
        [binary("helm"), *args, *config], text=True, capture_output=True, timeout=300
    )


def render(*args: str) -> list[Manifest]:
    """`helm template` of the chart; the manifests it renders."""
    result = helm("template", RELEASE, str(CHART), "--namespace", "tc-system", *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    names = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]
    raise AssertionError(f"no {kind} {name} among {names}")


def merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return copy.deepcopy(override)


@dataclass(frozen=True)
class Scenario:
    """One ci/*-values.yaml file and the chart's values it amounts to."""

    path: Path

    @property
    def values(self) -> dict[str, Any]:
        defaults = yaml.safe_load((CHART / "values.yaml").read_text())
        values: dict[str, Any] = merged(defaults, yaml.safe_load(self.path.read_text()) or {})
        return values

    def name(self, component: str) -> str:
        return f"{RELEASE}-train-conductor-{component}"

    def service_account(self, component: str) -> str:
        return str(self.values[component]["serviceAccount"]["name"] or self.name(component))

    @property
    def auth_modes(self) -> list[str]:
        auth = self.values["auth"]
        return [auth["mode"]] if auth.get("mode") else list(auth["modes"])

    @property
    def queues(self) -> bool:
        """Whether its trainings wait in Kueue's queues (Kueue must run)."""
        return bool(self.values["queues"]["enabled"])

    @property
    def token_review(self) -> bool:
        return "token-review" in self.auth_modes

    @property
    def progress_reports(self) -> bool:
        """Whether training pods report progress with their own tokens (which
        the API reviews, reading the pods)."""
        return bool(self.values["progress"]["enabled"]) and "none" not in self.auth_modes

    @property
    def reviews_tokens(self) -> bool:
        """Whether the API creates TokenReviews (system:auth-delegator)."""
        return self.token_review or self.progress_reports

    @property
    def pod_logs(self) -> bool:
        """Whether the API reads trainings' pods and their logs."""
        return bool(self.values["logs"]["fromPods"])

    @property
    def keeps_logs(self) -> bool:
        """Whether the controller keeps the end of finished trainings' logs."""
        return int(self.values["logs"]["keptBytesPerRank"]) > 0

    @property
    def api_uses_kubernetes(self) -> bool:
        """Whether the API calls the apiserver (TokenReview, pods, logs)."""
        return self.reviews_tokens or self.pod_logs

    def secrets_named(self) -> list[str]:
        """Secrets the scenario expects the operator to have made."""
        values = self.values
        redis = values["redis"]
        names = [
            *values["imagePullSecrets"],
            redis["existingSecret"],
            redis["tls"]["caSecret"],
            redis["sentinel"]["existingSecret"] if redis["sentinel"]["hosts"] else "",
            *(user["existingSecret"] for user in redis["users"].values()),
            values["api"]["tls"]["secretName"] if values["api"]["tls"]["enabled"] else "",
            values["auth"]["staticTokens"]["existingSecret"]
            if "static-token" in self.auth_modes
            else "",
        ]
        return [n for n in names if n]


def scenario_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


# Every scenario, as a test parameter named after its file.
SCENARIOS = [pytest.param(Scenario(path), id=scenario_id(path)) for path in SCENARIO_FILES]


# what the rendered manifests give the services


def api_config(manifests: list[Manifest]) -> dict[str, Any]:
    """The API's settings file, as the chart renders it."""
    config_map = find(manifests, "ConfigMap", f"{RELEASE}-train-conductor-api")
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return config


def api_pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = find(manifests, "Deployment", f"{RELEASE}-train-conductor-api")["spec"][
        "template"
    ]["spec"]
    return spec


def api_prestop(manifests: list[Manifest]) -> list[str] | None:
    """The command of the API container's preStop hook, if it has one."""
    container = api_pod_spec(manifests)["containers"][0]
    hook = container.get("lifecycle", {}).get("preStop")
    return None if hook is None else list(hook["exec"]["command"])


def pod_environment(manifests: list[Manifest], component: str, config_file: Path) -> dict[str, str]:
    """The environment the chart gives a service's container, its config file written out."""
    name = f"{RELEASE}-train-conductor-{component}"
    config_file.write_text(find(manifests, "ConfigMap", name)["data"]["config.yaml"])
    container = find(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env["TC_CONFIG_FILE"] = str(config_file)
    return env


def loaded_settings(module: str, cls: str, env: dict[str, str]) -> dict[str, Any]:
    """The settings a service loads at start, in a process of its own."""
    code = f"from {module} import {cls}; print({cls}().model_dump_json())"
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env},
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"{cls} refused the chart's settings:\n{result.stderr}"
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings
