"""The API as the tests run it: in process, with settings against the tests'
Redis (quick timeouts, an ephemeral port) and the type of the fixture that
starts one with settings overridden; or as a process of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from trainconductor_api.server import ApiServer
from trainconductor_api.settings import ApiSettings

# start_api(**overrides): a started API server, stopped after the test.
StartApi = Callable[..., Awaitable[ApiServer]]


def api_settings(redis_server: RedisServer, key_prefix: str, **overrides: object) -> ApiSettings:
    values: dict[str, object] = {
        "redis_url": redis_server.url,
        "redis_key_prefix": key_prefix,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "drain_seconds": 1.0,
        "watch_poll_ms": 200,
        "health_probe_seconds": 0.2,
        "redis_socket_timeout_seconds": 1.0,
        "redis_connect_timeout_seconds": 0.5,
        "redis_retries": 1,
    }
    values.update(overrides)
    return ApiSettings(**values)  # type: ignore[arg-type]


def start_api_process(log_dir: Path, name: str, **env: str) -> tuple[Service, int]:
    """The API as a process of its own (`trainconductor-api`), logging at
    DEBUG into `log_dir`, with settings `env` over quick test ones; returns it
    once it serves, and its gRPC port."""
    port, http_port = free_port(), free_port()
    api = Service(
        name,
        "trainconductor_api.main",
        {
            "TC_GRPC_HOST": "127.0.0.1",
            "TC_GRPC_PORT": str(port),
            "TC_HTTP_PORT": str(http_port),
            "TC_DRAIN_SECONDS": "0.5",
            "TC_LOG_LEVEL": "DEBUG",
            "TC_HEALTH_PROBE_SECONDS": "0.2",
            "TC_REDIS_CONNECT_TIMEOUT_SECONDS": "0.5",
            "TC_REDIS_SOCKET_TIMEOUT_SECONDS": "1",
            "TC_WATCH_POLL_MS": "500",
            **env,
        },
        log_dir,
    ).start()
    api.http_port = http_port
    api.wait_http_ok(f"http://127.0.0.1:{http_port}/metrics")
    return api, port
