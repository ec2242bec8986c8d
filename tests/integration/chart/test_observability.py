"""Metrics and traces as the chart renders them: ServiceMonitors and alerts
where the Prometheus Operator is, the collector sidecar, the sampling."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.chart import MONITORING_APIS, RELEASE, SCENARIOS, Scenario, find, render


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_monitoring_renders_where_the_prometheus_operator_is(scenario: Scenario) -> None:
    apis = [arg for api in MONITORING_APIS for arg in ("--api-versions", api)]
    values = scenario.values
    manifests = render("-f", str(scenario.path), *apis)
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for component in ("api", "controller"):
        monitored = ("ServiceMonitor", scenario.name(component)) in kinds
        assert monitored == values[component]["serviceMonitor"]["enabled"], component
        if monitored:
            # What the operator scrapes: the named port of every Service
            # whose labels the monitor selects. Exactly one Service per
            # component, and for the API the in-cluster headless one, never
            # the Service that may face outside.
            monitor = find(manifests, "ServiceMonitor", scenario.name(component))
            port = monitor["spec"]["endpoints"][0]["port"]
            wanted = monitor["spec"]["selector"]["matchLabels"].items()
            scraped = [
                m["metadata"]["name"]
                for m in manifests
                if m["kind"] == "Service"
                and wanted <= m["metadata"]["labels"].items()
                and port in {p["name"] for p in m["spec"]["ports"]}
            ]
            name = scenario.name(component)
            assert scraped == [f"{name}-headless" if component == "api" else name], component
            # The job label its series get (the Service's name unless
            # relabelled) is the one the alerts select.
            job = next(
                (
                    r["replacement"]
                    for r in monitor["spec"]["endpoints"][0].get("relabelings", [])
                    if r.get("targetLabel") == "job"
                ),
                scraped[0],
            )
            assert job == name, component
            if values["prometheusRule"]["enabled"]:
                rule = find(manifests, "PrometheusRule", f"{RELEASE}-train-conductor")
                assert f'job="{job}"' in json.dumps(rule["spec"]).replace('\\"', '"'), component
    if values["prometheusRule"]["enabled"]:
        rule = find(manifests, "PrometheusRule", f"{RELEASE}-train-conductor")
        alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
        assert alerts >= {
            "TrainConductorAPIDown",
            "TrainConductorAPINoHealthyReplicas",
            "TrainConductorGrpcErrors",
            "TrainConductorControllerNoLeader",
            "TrainConductorReconcileErrors",
            "TrainConductorWorkQueueBacklog",
            "TrainConductorChangeFeedLag",
            "TrainConductorTrainingsStuckQueued",
        }
    without = {m["kind"] for m in render("-f", str(scenario.path))}
    assert not without & {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("component", ["api", "controller"])
def test_the_collector_sidecar_is_probed_on_its_health_check(component: str) -> None:
    manifests = render(
        "--set", f"{component}.otelCollector.enabled=true",
        "--set", f"{component}.otelCollector.config.service.extensions={{zpages}}",
        "--set", f"{component}.otelCollector.config.extensions.zpages.endpoint=127.0.0.1:55679",
    )  # fmt: skip
    name = f"{RELEASE}-train-conductor-{component}"
    config = yaml.safe_load(find(manifests, "ConfigMap", name)["data"]["otel-collector.yaml"])
    # The operator's extensions stay; health_check joins them.
    assert config["service"]["extensions"] == ["zpages", "health_check"]
    assert config["extensions"]["zpages"] == {"endpoint": "127.0.0.1:55679"}
    port = int(config["extensions"]["health_check"]["endpoint"].rpartition(":")[2])
    spec = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
    sidecar = next(c for c in spec["containers"] if c["name"] == "otel-collector")
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert ports[sidecar[probe]["httpGet"]["port"]] == port, probe
    assert sidecar["resources"]["requests"]
    assert sidecar["resources"]["limits"]["memory"]


@pytest.mark.parametrize("component", ["api", "controller"])
def test_traces_are_sampled_at_the_chosen_ratio_when_they_are_exported(component: str) -> None:
    def tracing_env(*args: str) -> dict[str, str]:
        name = f"{RELEASE}-train-conductor-{component}"
        spec = find(render(*args), "Deployment", name)["spec"]["template"]["spec"]
        container = next(c for c in spec["containers"] if c["name"] == component)
        return {e["name"]: e.get("value") for e in container["env"] if e["name"].startswith("OTEL")}

    assert tracing_env() == {}  # no exporter, no tracing
    on = f"{component}.otelCollector.enabled=true"
    assert tracing_env("--set", on) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_SERVICE_NAME": f"trainconductor-{component}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    everything = tracing_env("--set", on, "--set", "tracing.sampleRatio=1")
    assert everything["OTEL_TRACES_SAMPLER_ARG"] == "1"
    with pytest.raises(AssertionError, match="sampleRatio"):
        render("--set", "tracing.sampleRatio=2")
