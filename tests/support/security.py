"""Credentials for the security tests: static token files and channels that
present a CA, a client certificate or a bearer token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

import grpc

from tests.support.certificates import KeyPair

# Channels of a test never share connections with another channel's, so a
# test that rotates a certificate sees a new handshake on every channel.
PRIVATE_CONNECTIONS = [("grpc.use_local_subchannel_pool", 1)]


@dataclass(frozen=True)
class StaticUser:
    user: str
    groups: tuple[str, ...]
    token: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@dataclass(frozen=True)
class StaticTokens:
    """A static token file (auth mode static-token) and the users it names."""

    path: Path
    alice: StaticUser
    bob: StaticUser
    admin: StaticUser


def static_user(user: str, *groups: str) -> StaticUser:
    return StaticUser(user, groups, secrets.token_urlsafe(32))


def write_static_tokens(path: Path, users: list[StaticUser]) -> Path:
    lines = ["# user tokens, as their SHA-256 digests"]
    for u in users:
        digest = hashlib.sha256(u.token.encode()).hexdigest()
        lines.append(f"sha256:{digest} {u.user} {','.join(u.groups)}".rstrip())
    path.write_text("\n".join(lines) + "\n")
    return path


def tls_channel(
    port: int, ca: Path, client: KeyPair | None = None, host: str = "127.0.0.1"
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )
    return grpc.aio.secure_channel(f"{host}:{port}", credentials, options=PRIVATE_CONNECTIONS)


def plain_channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=PRIVATE_CONNECTIONS)
