"""Fixtures of the integration suites: API servers with chosen settings and
real certificates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devstack.redis_server import RedisServer
from tests.support.api import StartApi, api_settings
from tests.support.certificates import CertificateAuthority, Certificates
from tests.support.security import StaticTokens
from trainconductor_api.server import ApiServer, build_server


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory / "ca")
    rogue = CertificateAuthority(directory / "rogue", "rogue-ca")
    return Certificates(
        ca=ca,
        server=ca.server("api"),
        alice=ca.client("alice", ("ml",)),
        admin=ca.client("root-of-all", ("tc-admins",)),
        rogue_ca=rogue,
        rogue_alice=rogue.client("alice", ("ml",)),
    )


@pytest.fixture
async def start_api(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[StartApi]:
    """Starts an in-process API with settings overridden; stops it afterwards."""
    started: list[ApiServer] = []

    async def start(**overrides: object) -> ApiServer:
        server = build_server(
            api_settings(redis_server, key_prefix, **overrides), serve_metrics=False
        )
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.drain_and_stop()


@pytest.fixture
def token_api_settings(static_tokens: StaticTokens) -> dict[str, object]:
    """Settings of an API that takes the static tokens, with admins."""
    return {
        "auth_modes": ["static-token"],
        "static_tokens_file": static_tokens.path,
        "admin_groups": ["tc-admins"],
    }
