"""How the chart has the API identify callers: ServiceAccount tokens by
default, static tokens, TLS and mTLS, or none with consent; and the
Kubernetes rights and files each mode needs, only then."""

from __future__ import annotations

import pytest

from tests.support.chart import (
    ALLOW_NONE,
    CHART,
    NO_POD_LOGS,
    NONE,
    RELEASE,
    STATIC_TOKENS,
    api_config,
    api_pod_spec,
    find,
    helm,
    render,
)


@pytest.mark.parametrize(
    "mode", [("--set", "auth.modes={none}"), ("--set", "auth.mode=none")], ids=["modes", "mode"]
)
def test_auth_none_needs_consent(mode: tuple[str, str]) -> None:
    result = helm("template", RELEASE, str(CHART), *mode)
    assert result.returncode != 0
    assert "auth.allowInsecureNone=true" in result.stderr, result.stderr
    config = api_config(render(*mode, *ALLOW_NONE))
    assert config["auth_modes"] == ["none"]
    assert "auth_mode" not in config


def test_the_default_identifies_callers_by_their_service_account_tokens() -> None:
    config = api_config(render())
    assert config["auth_modes"] == ["token-review"]
    assert config["token_review_audience"] == "train-conductor"
    # Production limits, on unless turned off.
    assert config["create_rate_per_second"] > 0
    assert config["create_burst"] >= 1
    assert config["max_active_trainings_per_owner"] > 0


@pytest.mark.parametrize(
    ("modes", "token_review"),
    [
        pytest.param(("--set", "auth.modes={token-review}"), True, id="token-review"),
        pytest.param(
            ("--set", "auth.modes={static-token,token-review}", *STATIC_TOKENS), True,
            id="beside static-token",
        ),
        pytest.param(("--set", "auth.modes={static-token}", *STATIC_TOKENS,
                      "--set", "progress.enabled=false", *NO_POD_LOGS), False,
                     id="static-token"),
        pytest.param(("--set", "auth.modes={static-token}", *STATIC_TOKENS), True,
                     id="static-token, with progress reports from the pods' tokens"),
        pytest.param((*NONE, *NO_POD_LOGS), False, id="none"),
    ],
)  # fmt: skip
def test_the_api_gets_a_token_and_the_auth_delegator_role_only_to_review_tokens(
    modes: tuple[str, ...], token_review: bool
) -> None:
    for account in ("", "tc-api"):
        named = ("--set", f"api.serviceAccount.name={account}") if account else ()
        manifests = render(*modes, *named)
        api = f"{RELEASE}-train-conductor-api"
        bindings = [m for m in manifests if m["kind"] == "ClusterRoleBinding"]
        assert api_pod_spec(manifests)["automountServiceAccountToken"] is token_review
        assert (
            find(manifests, "ServiceAccount", account or api)["automountServiceAccountToken"]
            is token_review
        )
        if not token_review:
            assert not bindings
            continue
        # Cluster-wide: two releases of the same name in two namespaces get two.
        assert [b["metadata"]["name"] for b in bindings] == [f"{api}-tc-system-auth-delegator"]
        assert bindings[0]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:auth-delegator",
        }
        assert bindings[0]["subjects"] == [
            {"kind": "ServiceAccount", "name": account or api, "namespace": "tc-system"}
        ]


def test_static_tokens_are_mounted_from_their_secret_as_a_file() -> None:
    manifests = render(
        "--set", "auth.modes={static-token}",
        "--set", "auth.staticTokens.existingSecret=api-tokens",
        "--set", "auth.staticTokens.key=tokens.txt",
    )  # fmt: skip
    spec = api_pod_spec(manifests)
    volume = next(v for v in spec["volumes"] if v["name"] == "static-tokens")
    assert volume["secret"] == {
        "secretName": "api-tokens",
        "items": [{"key": "tokens.txt", "path": "tokens"}],
    }
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "static-tokens")
    # A directory, not a subPath: the kubelet updates it when the Secret changes.
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    assert api_config(manifests)["static_tokens_file"] == f"{mount['mountPath']}/tokens"
    assert "static-tokens" not in {v["name"] for v in api_pod_spec(render())["volumes"]}


@pytest.mark.parametrize("client_ca", [False, True], ids=["tls", "mtls"])
def test_tls_mounts_the_secret_and_names_its_files(client_ca: bool) -> None:
    sets = ["api.tls.enabled=true", "api.tls.secretName=tc-api-tls"]
    if client_ca:
        sets += ["api.tls.clientCA=true", "auth.modes={mtls,token-review}"]
    manifests = render(*(arg for value in sets for arg in ("--set", value)))
    spec = api_pod_spec(manifests)
    container = spec["containers"][0]
    volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    files = ["tls.crt", "tls.key", *(["ca.crt"] if client_ca else [])]
    assert volume["secret"] == {
        "secretName": "tc-api-tls",
        "items": [{"key": f, "path": f} for f in files],
    }
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    config = api_config(manifests)
    directory = mount["mountPath"]
    assert config["tls_cert_file"] == f"{directory}/tls.crt"
    assert config["tls_key_file"] == f"{directory}/tls.key"
    assert config.get("tls_client_ca_file") == (f"{directory}/ca.crt" if client_ca else None)
    # The kubelet's gRPC probe can not speak TLS.
    assert container["readinessProbe"]["tcpSocket"] == {"port": "grpc"}
    assert "grpc" not in container["readinessProbe"]

    plain = api_pod_spec(render())["containers"][0]
    assert plain["readinessProbe"]["grpc"]["service"] == "trainconductor.v1.TrainingService"
    assert "tls" not in {m["name"] for m in plain["volumeMounts"]}
