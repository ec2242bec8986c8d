"""A service given a setting it can not use stops at once, and its log says
which setting and why, in one line: no traceback, no secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devstack.ports import free_port
from devstack.processes import Service

PASSWORD = "s3cret-redis-password"


@pytest.mark.parametrize(
    ("module", "setting", "value", "complaint"),
    [
        ("trainconductor_api.main", "TC_GRPC_PORT", "eighty", "valid integer"),
        ("trainconductor_api.main", "TC_LOG_LEVEL", "LOUD", "'DEBUG', 'INFO'"),
        ("trainconductor_controller.main", "TC_WORKERS", "0", "greater than or equal to 1"),
        # A CA file on a redis:// URL: every connection would fail, later.
        ("trainconductor_api.main", "TC_REDIS_CA_FILE", "/etc/ssl/ca.pem", "rediss://"),
    ],
)
def test_a_bad_setting_stops_the_service_naming_it(
    module: str, setting: str, value: str, complaint: str, tmp_path: Path
) -> None:
    http_port = free_port()
    env = {setting: value, "TC_HTTP_PORT": str(http_port), "TC_REDIS_PASSWORD": PASSWORD}
    service = Service("service", module, env, tmp_path).start()
    started = time.monotonic()
    with pytest.raises(AssertionError, match="exited with 1"):
        service.wait_http_ok(f"http://127.0.0.1:{http_port}/readyz", timeout=60)
    assert time.monotonic() - started < 30, "the wait did not notice the exit"
    lines = service.log_path.read_text().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert f"invalid settings: {setting.lower()[3:]} ({setting}): " in line, line
    assert complaint in line, line
    assert PASSWORD not in line
