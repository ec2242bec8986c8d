"""Security settings that contradict each other fail at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from trainconductor_api.settings import ApiSettings
from trainconductor_core.settings import SettingsError, load

FILES: dict[str, Any] = {"tls_cert_file": Path("/c.pem"), "tls_key_file": Path("/k.pem")}


def test_the_default_is_none_for_local_development() -> None:
    settings = ApiSettings()
    assert settings.auth_modes == ["none"]
    assert not settings.authentication_enabled
    assert not settings.tls_enabled


def test_the_single_mode_of_an_earlier_release_still_works() -> None:
    assert ApiSettings(auth_mode="mtls", tls_client_ca_file=Path("/ca"), **FILES).auth_modes == [
        "mtls"
    ]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param({"auth_modes": ["none", "mtls"]}, "can not be combined", id="none and more"),
        pytest.param({"tls_cert_file": Path("/c")}, "set together", id="a cert without a key"),
        pytest.param(
            {"tls_client_ca_file": Path("/ca")}, "needs tls_cert_file", id="mTLS without TLS"
        ),
        pytest.param({"auth_modes": ["mtls"], **FILES}, "tls_client_ca_file", id="mtls, no CA"),
        pytest.param(
            {"auth_modes": ["static-token"]}, "static_tokens_file", id="tokens without a file"
        ),
        pytest.param({"auth_modes": ["kerberos"]}, "auth_modes", id="an unknown mode"),
        pytest.param({"auth_modes": []}, "auth_modes", id="no mode"),
        pytest.param(
            {"auth_mode": "none", "auth_modes": ["static-token"], "static_tokens_file": Path("/t")},
            "disagree",
            id="old and new settings disagree",
        ),
        pytest.param(
            {"watch_poll_ms": 2000, "redis_socket_timeout_seconds": 2},
            r"watch_poll_ms \(2000\) must be shorter than redis_socket_timeout_seconds \(2 s\)",
            id="watches that would outlast the socket timeout",
        ),
        pytest.param(
            {"max_watches": 512},
            r"max_watches \(512\) must be below redis_max_connections \(512\)",
            id="watches that could take every Redis connection",
        ),
    ],
)
def test_contradictions_are_refused(values: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ApiSettings(**values)  # type: ignore[arg-type]


def test_a_refused_setting_does_not_print_the_redis_password() -> None:
    with pytest.raises(ValidationError) as err:
        ApiSettings(redis_password="hunter2-and-more", auth_modes=["none", "mtls"])
    assert "hunter" not in str(err.value)
    assert "can not be combined" in str(err.value)


def test_load_names_each_refused_setting_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TC_GRPC_PORT", "eighty")
    monkeypatch.setenv("TC_WATCH_POLL_MS", "-1")
    monkeypatch.setenv("TC_REDIS_PASSWORD", "hunter2-and-more")
    with pytest.raises(SettingsError) as err:
        load(ApiSettings)
    message = str(err.value)
    assert message.startswith("invalid settings: "), message
    assert "grpc_port (TC_GRPC_PORT): Input should be a valid integer" in message
    assert "watch_poll_ms (TC_WATCH_POLL_MS): Input should be greater than 0" in message
    assert "eighty" not in message
    assert "hunter" not in message


def test_load_gives_a_rule_across_settings_in_its_own_words() -> None:
    with pytest.raises(SettingsError, match=r"^invalid settings: auth_modes 'none' can not be"):
        load(ApiSettings, auth_modes=["none", "mtls"])


def test_load_names_a_key_of_the_yaml_file_that_is_no_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "api.yaml"
    config.write_text("grpc_port: 5\nredis_ulr: redis://redis:6379/0\n")
    monkeypatch.setenv("TC_CONFIG_FILE", str(config))
    with pytest.raises(SettingsError, match=r"^invalid settings: redis_ulr: is not a setting$"):
        load(ApiSettings)


def test_watches_get_three_quarters_of_the_pool_unless_told() -> None:
    assert ApiSettings(redis_max_connections=100).watch_limit == 75
    assert ApiSettings(redis_max_connections=100, max_watches=10).watch_limit == 10
