"""Tokens and the Redis password never reach a log line, whatever happens:
accepted and refused tokens, bad input, Redis refusing the password, Redis
going away. The API runs as a process, logging at DEBUG, as in production."""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import start_api_process
from tests.support.redis_acl import setuser_arguments
from tests.support.secret_scan import SecretRegistry
from tests.support.security import static_user, write_static_tokens


def calls(port: int, metadata: tuple[tuple[str, str], ...]) -> list[grpc.StatusCode]:
    """Every kind of call, with the given metadata; returns the codes."""
    codes: list[grpc.StatusCode] = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        bad = lora_spec()
        bad.parameters.learning_rate = float("nan")
        attempts: list[Callable[[], object]] = [
            lambda: stub.CreateTraining(
                pb.CreateTrainingRequest(spec=lora_spec()), metadata=metadata, timeout=5
            ),
            lambda: stub.CreateTraining(
                pb.CreateTrainingRequest(spec=bad), metadata=metadata, timeout=5
            ),
            lambda: stub.ListTrainings(pb.ListTrainingsRequest(), metadata=metadata, timeout=5),
            lambda: stub.GetTraining(
                pb.GetTrainingRequest(id="0" * 20), metadata=metadata, timeout=5
            ),
            lambda: list(
                stub.WatchTraining(
                    pb.WatchTrainingRequest(id="0" * 20), metadata=metadata, timeout=5
                )
            ),
        ]
        for attempt in attempts:
            try:
                attempt()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as err:
                codes.append(err.code())
    return codes


def test_no_token_or_password_is_ever_logged(tmp_path: Path, log_secrets: SecretRegistry) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    password = log_secrets.add(secrets.token_hex(16), "the Redis password of tc-api")
    admin: Any = redis.Redis(port=redis_server.port)  # execute_command has no annotations
    admin.execute_command(*setuser_arguments("tc-api", password))
    admin.execute_command("ACL", "SETUSER", "default", "off")

    alice = static_user("alice")
    log_secrets.add_static_user(alice, "test_no_token_or_password_is_ever_logged")
    tokens = write_static_tokens(tmp_path / "tokens", [alice])
    wrong_token = log_secrets.add(secrets.token_urlsafe(24), "a bearer token nobody issued")
    wrong_password = log_secrets.add(secrets.token_hex(16), "a wrong Redis password")
    apis: list[Service] = []
    try:
        api, port = start_api_process(
            tmp_path,
            "api",
            TC_REDIS_URL=redis_server.url,
            TC_REDIS_USERNAME="tc-api",
            TC_REDIS_PASSWORD=password,
            TC_AUTH_MODES='["static-token"]',
            TC_STATIC_TOKENS_FILE=str(tokens),
        )
        apis.append(api)
        # The wrong password in the URL, the way many operators write it.
        url = redis_server.url.replace("redis://", f"redis://tc-api:{wrong_password}@")
        locked_out, locked_port = start_api_process(
            tmp_path, "api-wrong-password", TC_REDIS_URL=url, TC_AUTH_MODES='["static-token"]',
            TC_STATIC_TOKENS_FILE=str(tokens),
        )  # fmt: skip
        apis.append(locked_out)

        assert calls(port, alice.metadata())[0] == grpc.StatusCode.OK
        for metadata in (
            (("authorization", f"Bearer {wrong_token}"),),
            (("authorization", f"Bearer {wrong_token} {alice.token}"),),
            (("authorization", f"Basic {alice.token}"),),
            (("authorization", alice.token),),
            (("x-tc-user", alice.token),),
        ):
            assert set(calls(port, metadata)) == {grpc.StatusCode.UNAUTHENTICATED}
        assert grpc.StatusCode.UNAVAILABLE in calls(locked_port, alice.metadata())
        redis_server.stop()  # an outage, with a call in it
        assert grpc.StatusCode.UNAVAILABLE in calls(port, alice.metadata())
    finally:
        for service in apis:
            service.signal(signal.SIGTERM)
        redis_server.stop()

    logs = {service.name: service.log_path.read_text() for service in apis}
    secrets_ = {
        "alice's token": alice.token,
        "the digest of alice's token": hashlib.sha256(alice.token.encode()).hexdigest(),
        "a wrong token": wrong_token,
        "the Redis password": password,
        "a wrong Redis password": wrong_password,
    }
    for name, text in logs.items():
        for what, secret in secrets_.items():
            assert secret not in text, f"{what} is in the log of {name}"
    # The logs did record the failures, just not the secrets.
    assert {"unauthenticated", "unavailable"} <= logged_codes(logs["api"])
    assert "unavailable" in logged_codes(logs["api-wrong-password"])


def logged_codes(log: str) -> set[str]:
    """The status codes of the access log lines, however they are spelled."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return {
        str(line["grpc_code"]).replace("_", "").lower() for line in lines if "grpc_code" in line
    }


@pytest.mark.parametrize("mode", ["none", "static-token"])
def test_the_start_up_log_says_how_callers_are_identified(
    tmp_path: Path, mode: str, log_secrets: SecretRegistry
) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    alice = static_user("alice")
    log_secrets.add_static_user(alice, "test_the_start_up_log_says_how_callers_are_identified")
    tokens = write_static_tokens(tmp_path / "tokens", [alice])
    try:
        api, _ = start_api_process(
            tmp_path, "api", TC_REDIS_URL=redis_server.url, TC_AUTH_MODES=f'["{mode}"]',
            TC_STATIC_TOKENS_FILE=str(tokens),
        )  # fmt: skip
        api.signal(signal.SIGTERM)
    finally:
        redis_server.stop()
    text = api.log_path.read_text()
    if mode == "none":
        assert "authentication is OFF" in text
    else:
        assert "authentication is OFF" not in text
        assert "bearer tokens are accepted over plaintext" in text
