"""The API service's settings: one frozen object, loaded once at start."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainconductor_core.settings import CommonSettings


class ApiSettings(CommonSettings):
    grpc_host: str = Field("0.0.0.0", description="Address the gRPC port binds to.")
    grpc_port: int = Field(
        50051, ge=0, le=65535, description="gRPC: both services, health, reflection."
    )
    http_port: int = Field(9464, ge=0, le=65535, description="HTTP: /metrics.")
    drain_seconds: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM: how long in-flight calls may finish after health "
        "turns NOT_SERVING (keep below the pod's terminationGracePeriodSeconds).",
    )
    max_message_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest request or response message accepted."
    )
    max_connection_age_seconds: float = Field(
        300.0,
        gt=0,
        description="Connections are closed after this age so clients rebalance over "
        "replicas after scaling.",
    )
    health_probe_seconds: float = Field(
        1.0, gt=0, description="How often Redis is pinged to set the health status."
    )
    request_id_ttl_seconds: int = Field(
        7 * 24 * 3600, gt=0, description="How long a request_id keeps returning its training."
    )
    training_events_cap: int = Field(
        1000, gt=0, description="Events kept per training for WatchTraining (approximate)."
    )
    all_events_cap: int = Field(
        100_000, gt=0, description="Events kept for WatchTrainings (approximate)."
    )
    watch_poll_ms: int = Field(
        2000, gt=0, description="Longest blocking read of a watch before it checks the client."
    )
    max_gpus_per_training: int = Field(8, ge=0, description="Most GPUs one training may ask for.")
    allowed_path_prefixes: list[str] = Field(
        default_factory=list,
        description="When set, output_path and data_path must start with one of these "
        "(e.g. 's3://models/', '/mnt/data/').",
    )
    auth_mode: Literal["none"] = Field(
        "none",
        description="How callers are identified. 'none' trusts the x-tc-user metadata "
        "and is for local development only.",
    )
