"""What a call presents to prove who it is, read from its metadata and its
TLS connection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from trainconductor_api.authentication.errors import Unauthenticated

AUTHORIZATION = "authorization"
USER_METADATA = "x-tc-user"
MAX_TOKEN_CHARS = 16 * 1024  # projected ServiceAccount tokens are about 1 KiB


@dataclass(frozen=True)
class Credentials:
    # repr=False: a token must not reach a log line or a traceback's repr.
    bearer_token: str | None = field(default=None, repr=False)
    # Set only when the TLS layer verified a client certificate (mTLS).
    client_subject: str | None = None
    client_common_name: str | None = None
    # The name claimed in x-tc-user; trusted only under auth mode "none".
    claimed_user: str | None = None


def credentials_of(
    context: grpc.aio.ServicerContext[Any, Any], *, certificate: bool = True
) -> Credentials:
    """`certificate=False` skips reading the TLS peer (it costs, and only mTLS needs it)."""
    token: str | None = None
    claimed: str | None = None
    seen_authorization = False
    for key, value in context.invocation_metadata() or ():
        if not isinstance(value, str):
            continue
        if key == AUTHORIZATION:
            if seen_authorization:
                raise Unauthenticated("more than one authorization metadata entry")
            seen_authorization = True
            token = bearer_token(value)
        elif key == USER_METADATA:
            claimed = value
    auth = context.auth_context() if certificate else {}
    return Credentials(
        bearer_token=token,
        client_subject=_first(auth, "x509_subject"),
        client_common_name=_first(auth, "x509_common_name"),
        claimed_user=claimed,
    )


def bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
    if len(token) > MAX_TOKEN_CHARS or any(c.isspace() or not c.isprintable() for c in token):
        raise Unauthenticated("the bearer token is malformed")
    return token


def _first(auth: Mapping[str, Iterable[bytes]], name: str) -> str | None:
    for value in auth.get(name, ()):
        return value.decode("utf-8", errors="replace")
    return None
