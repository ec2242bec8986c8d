"""Fixtures of the integration suites: API servers with chosen settings,
real certificates and static tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.redis_server import RedisServer
from tests.conftest import api_settings
from tests.support.certificates import CertificateAuthority, KeyPair
from tests.support.security import StaticUser, static_user, write_static_tokens
from trainconductor_api.server import ApiServer, build_server

StartApi = Callable[..., Awaitable[ApiServer]]


@dataclass(frozen=True)
class Certificates:
    ca: CertificateAuthority
    server: KeyPair
    alice: KeyPair  # CN=alice, O=ml
    admin: KeyPair  # CN=root-of-all, O=tc-admins
    rogue_ca: CertificateAuthority  # trusted by nobody
    rogue_alice: KeyPair  # CN=alice, signed by the rogue CA

    def server_tls(self) -> dict[str, object]:
        """API settings for TLS with the server's certificate."""
        return {"tls_cert_file": self.server.cert, "tls_key_file": self.server.key}

    def mtls(self) -> dict[str, object]:
        """API settings for TLS that also checks client certificates against
        the CA and takes their subject as the caller (auth mode `mtls`)."""
        return {**self.server_tls(), "tls_client_ca_file": self.ca.cert, "auth_modes": ["mtls"]}


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


@dataclass(frozen=True)
class StaticTokens:
    path: Path
    alice: StaticUser
    bob: StaticUser
    admin: StaticUser


@pytest.fixture
def static_tokens(tmp_path: Path) -> StaticTokens:
    alice, bob = static_user("alice", "ml"), static_user("bob", "vision")
    admin = static_user("ops", "tc-admins")
    path = write_static_tokens(tmp_path / "tokens", [alice, bob, admin])
    return StaticTokens(path, alice, bob, admin)


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
