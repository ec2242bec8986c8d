"""The Redis the chart runs with redis.enabled: its ACL users are those of
the security page, and its start script, run with a real redis-server, signs
each in with its own password."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from devstack.ports import free_port
from devstack.waiting import wait_for
from tests.support.chart import RELEASE, find, render
from tests.support.redis_acl import acl_users, documented_acl
from trainconductor_core.redis_config import REDIS_CONFIG


def test_the_bundled_redis_users_are_those_of_the_security_page() -> None:
    manifests = render("--set", "redis.enabled=true", "--set", "redis.keyPrefix=tc-a*:")
    redis_files = find(manifests, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    documented = {
        user: rules.replace("~tc:*", "~tc-a\\*:*") for user, rules in documented_acl().items()
    }
    assert acl_users(redis_files["users.acl"]) == {"default": "on ~* &* +@all", **documented}
    # No password in the ConfigMap: start.sh adds them from the Secret.
    assert ">" not in redis_files["users.acl"]
    assert "#" not in redis_files["users.acl"]

    without_exporter = render(
        "--set", "redis.enabled=true", "--set", "redis.exporter.enabled=false"
    )
    files = find(without_exporter, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    assert "tc-exporter" not in acl_users(files["users.acl"])

    # Without passwords, no users either: the NetworkPolicy is the only guard.
    open_redis = render("--set", "redis.enabled=true", "--set", "redis.auth.enabled=false")
    files = find(open_redis, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    assert "users.acl" not in files
    assert "aclfile" not in files["redis.conf"]
    assert not [m for m in open_redis if m["kind"] == "Secret"]


def test_the_bundled_redis_starts_with_its_users_and_their_passwords(tmp_path: Path) -> None:
    """The chart's start.sh and users.acl, run with a real redis-server: each
    user signs in with the password of its Secret key and may do only its part."""
    manifests = render("--set", "redis.enabled=true")
    files = find(manifests, "ConfigMap", f"{RELEASE}-train-conductor-redis")["data"]
    secret = find(manifests, "Secret", f"{RELEASE}-train-conductor-redis")["data"]
    passwords = {key: base64.b64decode(value).decode() for key, value in secret.items()}
    statefulset = find(manifests, "StatefulSet", f"{RELEASE}-train-conductor-redis")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: passwords[e["valueFrom"]["secretKeyRef"]["key"]] for e in container["env"]}
    assert container["command"] == ["sh", "/etc/redis/start.sh"]
    port = free_port()
    (tmp_path / "run").mkdir()
    for name, text in files.items():
        text = text.replace("/etc/redis/", f"{tmp_path}/").replace(
            "/run/redis/", f"{tmp_path}/run/"
        )
        text = text.replace("dir /data", f"dir {tmp_path}").replace("port 6379", f"port {port}")
        (tmp_path / name).write_text(text.replace("bind 0.0.0.0 -::*", "bind 127.0.0.1"))
    server = subprocess.Popen(
        ["sh", str(tmp_path / "start.sh")],
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def connect(user: str | None, password: str | None) -> Any:
            return redis.Redis(
                port=port, username=user, password=password, socket_timeout=5, decode_responses=True
            )

        wait_for("Redis to answer", lambda: _pong(connect(None, env["REDIS_PASSWORD"])))
        acl = (tmp_path / "run" / "users.acl").read_text()
        assert oct((tmp_path / "run" / "users.acl").stat().st_mode & 0o777) == "0o600"
        for password in passwords.values():
            assert password not in acl
            assert hashlib.sha256(password.encode()).hexdigest() in acl

        with pytest.raises(redis.AuthenticationError):
            connect(None, None).ping()
        api = connect("tc-api", env["REDIS_API_PASSWORD"])
        assert api.set("tc:x", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            api.set("elsewhere", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            api.flushall()
        controller = connect("tc-controller", env["REDIS_CONTROLLER_PASSWORD"])
        assert controller.zcard("tc:phase") == 0
        with pytest.raises(redis.AuthenticationError):
            connect("tc-controller", env["REDIS_API_PASSWORD"]).ping()
        exporter = connect("tc-exporter", env["REDIS_EXPORTER_PASSWORD"])
        assert exporter.info()["redis_version"]
        # The memory it may take (redis.maxmemory, 768mb), and what Train
        # Conductor asks of it.
        assert exporter.config_get("maxmemory") == {"maxmemory": str(768 * 1024 * 1024)}
        for name, value in REDIS_CONFIG.items():
            assert exporter.config_get(name) == {name: value}
        assert exporter.slowlog_len() >= 0
        exporter.execute_command("CLIENT", "SETNAME", "redis_exporter")
        exporter.execute_command("LATENCY", "LATEST")
        with pytest.raises(redis.exceptions.NoPermissionError):
            exporter.get("tc:x")
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "start.sh" not in errors, errors


def _pong(connection: Any) -> bool:
    try:
        return bool(connection.ping())
    except redis.ConnectionError:
        return False
