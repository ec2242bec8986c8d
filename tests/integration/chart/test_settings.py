"""The services load the settings the chart renders for every scenario, and
find the files it mounts where those settings say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chart import SCENARIOS, Scenario, find, loaded_settings, pod_environment, render


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_services_accept_the_settings_the_chart_renders(
    scenario: Scenario, tmp_path: Path
) -> None:
    values = scenario.values
    manifests = render("-f", str(scenario.path), "--namespace", "tc-system")

    api_env = pod_environment(manifests, "api", tmp_path / "api.yaml")
    api = loaded_settings("trainconductor_api.settings", "ApiSettings", api_env)
    assert api["grpc_port"] == values["api"]["grpc"]["port"]
    assert api["http_port"] == values["api"]["metrics"]["port"]
    assert api["max_connection_age_seconds"] == values["api"]["grpc"]["maxConnectionAgeSeconds"]
    assert api["grpc_listeners"] == values["api"]["grpc"]["listeners"]
    assert api["drain_seconds"] < values["api"]["terminationGracePeriodSeconds"]
    auth = values["auth"]
    assert api["auth_modes"] == scenario.auth_modes
    assert api["auth_mode"] is None, "the chart writes auth_modes, not the deprecated auth_mode"
    assert api["token_review_audience"] == auth["tokenReview"]["audience"]
    assert api["admin_groups"] == auth["adminGroups"]
    assert api["create_rate_per_second"] == auth["rateLimit"]["createPerSecond"]
    assert api["create_burst"] == auth["rateLimit"]["burst"]
    assert api["max_active_trainings_per_owner"] == auth["maxActiveTrainingsPerOwner"]
    # Files the API reads are where the pod mounts them.
    mounts = {
        m["name"]: m["mountPath"]
        for m in find(manifests, "Deployment", scenario.name("api"))["spec"]["template"]["spec"][
            "containers"
        ][0]["volumeMounts"]
    }
    if values["api"]["tls"]["enabled"]:
        assert Path(api["tls_cert_file"]).parent == Path(mounts["tls"])
        assert Path(api["tls_key_file"]).parent == Path(mounts["tls"])
    else:
        assert api["tls_cert_file"] is None
    if "static-token" in scenario.auth_modes:
        assert Path(api["static_tokens_file"]).parent == Path(mounts["static-tokens"])

    env = pod_environment(manifests, "controller", tmp_path / "controller.yaml")
    controller = loaded_settings("trainconductor_controller.settings", "ControllerSettings", env)
    training = values["training"]
    assert controller["namespace"] == (training["namespace"] or "tc-system")
    assert controller["lease_namespace"] == "tc-system"
    assert controller["image"] == f"{training['image']['repository']}:{training['image']['tag']}"
    assert controller["command"] == training["command"]
    assert controller["tolerations"] == training["tolerations"]
    assert [v["claim_name"] for v in controller["volumes"]] == [
        v["claimName"] for v in training["volumes"]
    ]
    assert controller["ttl_seconds_after_finished"] == training["ttlSecondsAfterFinished"]
    # Nodes and retries: the API's limits and default, the controller's failure handling.
    limits = training["limits"]
    assert (api["max_nodes_per_training"], api["max_retries"], api["default_max_retries"]) == (
        limits["maxNodes"],
        limits["maxRetries"],
        training["defaultMaxRetries"],
    )
    assert controller["user_error_exit_codes"] == training["userErrorExitCodes"]
    assert controller["max_disruption_restarts"] == training["maxDisruptionRestarts"]
    assert controller["master_port"] == training["masterPort"]
    assert controller["pod_annotations"] == training["podAnnotations"]
    retention = values["retention"]
    assert controller["retention_seconds"] == retention["seconds"]
    assert controller["retention_tombstone_seconds"] == retention["tombstoneSeconds"]
    assert controller["retention_interval_seconds"] == retention["intervalSeconds"]
    assert controller["retention_batch"] == retention["batch"]
    assert controller["retention_rate_per_second"] == retention["ratePerSecond"]
    assert controller["finished_events_kept"] == retention["finishedEventsKept"]
    assert controller["redis_url"] == api["redis_url"]
    assert controller["redis_sentinels"] == values["redis"]["sentinel"]["hosts"]
    # The Sentinels' password, from its Secret, where they ask for one.
    sentinel = values["redis"]["sentinel"]
    for component in ("api", "controller"):
        container = find(manifests, "Deployment", scenario.name(component))["spec"]["template"][
            "spec"
        ]["containers"][0]
        refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
        if sentinel["hosts"] and sentinel["existingSecret"]:
            assert refs["TC_REDIS_SENTINEL_PASSWORD"] == {
                "name": sentinel["existingSecret"],
                "key": sentinel["existingSecretPasswordKey"],
            }, component
        else:
            assert "TC_REDIS_SENTINEL_PASSWORD" not in refs, component
    # Each service as its own Redis user, where there is one per service.
    redis_values = values["redis"]
    for component, loaded in (("api", api), ("controller", controller)):
        if redis_values["enabled"]:
            expected = f"tc-{component}" if redis_values["auth"]["enabled"] else None
        else:
            user = redis_values["users"][component]
            expected = user["username"] or redis_values["username"] or None
        assert loaded["redis_username"] == expected, component
