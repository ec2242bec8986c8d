"""Settings both services share: Redis, logging, and how they are loaded.

Each service defines one frozen settings class on top of `CommonSettings`.
Values come from `TC_*` environment variables, then from the YAML file named
by `TC_CONFIG_FILE` (environment wins), then from the defaults here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TC_",
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        # A refused setting must not print the values given: one may be the
        # Redis password.
        hide_input_in_errors=True,
    )

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis to record trainings in: redis://, rediss:// (TLS) or unix://.",
    )
    redis_username: str | None = Field(None, description="ACL user; overrides the URL's.")
    redis_password: SecretStr | None = Field(None, description="Overrides the URL's password.")
    redis_ca_file: Path | None = Field(None, description="CA bundle to verify a TLS Redis with.")
    redis_sentinels: list[str] = Field(
        default_factory=list,
        description="host:port of Sentinels; when set, the master is found through them.",
    )
    redis_sentinel_master: str = Field("mymaster", description="Sentinel's name of the master.")
    redis_sentinel_password: SecretStr | None = Field(
        None,
        description="Password the Sentinels ask for (requirepass in sentinel.conf), when they "
        "do; often Redis's own. redis_password is for the master only.",
    )
    redis_socket_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait for one Redis reply before it counts as down."
    )
    redis_connect_timeout_seconds: float = Field(2.0, gt=0, description="Longest connect wait.")
    redis_retries: int = Field(
        3, ge=0, description="Retries (with exponential backoff) of a call that failed to connect."
    )
    redis_max_connections: int = Field(
        512, gt=0, description="Pool size; each open watch stream holds one connection."
    )
    redis_key_prefix: str = Field(
        "tc:", description="Prefix of every key, so installs can share a Redis."
    )
    # Both services write events (the API on create and cancel, the
    # controller on every status change), so both trim by the same caps.
    training_events_cap: int = Field(
        1000, gt=0, description="Events kept per training for WatchTraining (approximate)."
    )
    all_events_cap: int = Field(
        100_000, gt=0, description="Events kept for WatchTrainings (approximate)."
    )
    log_level: LogLevel = Field("INFO", description="Lowest level written to the JSON log.")
    # Tracing follows OpenTelemetry's own variables (no TC_ prefix); the SDK
    # reads the rest of them (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS, ...).
    otel_traces_exporter: str = Field(
        "",
        validation_alias="OTEL_TRACES_EXPORTER",
        description="'otlp' turns tracing on, 'none' (or unset, without an endpoint) off.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
        description="OTLP/gRPC endpoint of the trace collector; setting it turns tracing on.",
    )

    @model_validator(mode="after")
    def _redis_tls_is_whole(self) -> CommonSettings:
        # A CA file on a redis:// URL would fail every connection, and only
        # once the service runs; say so at start instead.
        if (
            self.redis_ca_file is not None
            and not self.redis_sentinels
            and not self.redis_url.startswith("rediss://")
        ):
            raise ValueError(
                "redis_ca_file (TC_REDIS_CA_FILE): verifies a TLS Redis only; give a "
                "rediss:// redis_url (TC_REDIS_URL), or no CA file"
            )
        return self

    @property
    def tracing_enabled(self) -> bool:
        if self.otel_traces_exporter == "none":
            return False
        return self.otel_traces_exporter == "otlp" or bool(self.otel_exporter_otlp_endpoint)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("TC_CONFIG_FILE")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


class SettingsError(Exception):
    """Settings a service can not start with; the text names each one."""


def load(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Loads settings once at start; `overrides` are for tests.

    Raises `SettingsError`, naming each refused setting by the variable an
    operator sets (the values stay out: one may be a password).
    """
    try:
        return cls(**overrides)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":  # a key of the YAML file
                message = "is not a setting"
            if error["loc"]:
                message = f"{_variable(cls, error['loc'])}: {message}"
            # else a rule across several settings, whose message names them
            problems.append(message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _variable(cls: type[CommonSettings], loc: tuple[int | str, ...]) -> str:
    """The setting's name as the YAML file has it, and its environment variable."""
    name = str(loc[0])
    field = cls.model_fields.get(name)
    if field is None:  # not a setting, or already an alias (OTEL_*)
        return name
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    if isinstance(field.validation_alias, AliasChoices):
        return " or ".join(str(choice) for choice in field.validation_alias.choices)
    return f"{name} ({cls.model_config.get('env_prefix', '')}{name.upper()})"
