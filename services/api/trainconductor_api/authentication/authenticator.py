"""Chooses among the configured ways of authentication for one call.

A bearer token, when one is sent and a token mode is on, must be accepted
by one of them: a caller who presents a token that fails is refused, never
quietly taken as someone else (say, the client certificate's subject).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from trainconductor_api.authentication.client_cert import identity_from_subject
from trainconductor_api.authentication.credentials import Credentials
from trainconductor_api.authentication.errors import Unauthenticated
from trainconductor_api.authentication.static_tokens import StaticTokens
from trainconductor_api.authentication.token_review import TokenReviewer, kubernetes_review
from trainconductor_api.identity import ANONYMOUS, Identity
from trainconductor_api.settings import ApiSettings

MAX_USER_CHARS = 256
_CLAIMED_USER = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")


class Authenticator:
    def __init__(
        self,
        modes: Sequence[str],
        *,
        static_tokens: StaticTokens | None = None,
        token_reviewer: TokenReviewer | None = None,
    ) -> None:
        self._modes = frozenset(modes)
        self._static_tokens = static_tokens if "static-token" in self._modes else None
        self._token_reviewer = token_reviewer if "token-review" in self._modes else None
        self._accepts_tokens = self._static_tokens is not None or self._token_reviewer is not None

    @property
    def uses_certificates(self) -> bool:
        return "mtls" in self._modes

    async def authenticate(self, credentials: Credentials) -> Identity:
        if self._modes == {"none"}:
            return _claimed(credentials.claimed_user)
        if credentials.bearer_token is not None and self._accepts_tokens:
            return _checked(await self._by_token(credentials.bearer_token))
        if "mtls" in self._modes and credentials.client_subject:
            return _checked(
                identity_from_subject(credentials.client_subject, credentials.client_common_name)
            )
        raise Unauthenticated(f"no credentials; this API accepts: {self._accepted()}")

    async def _by_token(self, token: str) -> Identity:
        if self._static_tokens is not None:
            identity = self._static_tokens.lookup(token)
            if identity is not None:
                return identity
        if self._token_reviewer is not None:
            identity = await self._token_reviewer.identity(token)
            if identity is not None:
                return identity
        raise Unauthenticated("the bearer token was not accepted")

    def _accepted(self) -> str:
        ways = []
        if self._accepts_tokens:
            ways.append("a bearer token (authorization: Bearer <token>)")
        if "mtls" in self._modes:
            ways.append("a client certificate")
        return " or ".join(ways)


def build_authenticator(settings: ApiSettings) -> Authenticator:
    modes = settings.auth_modes
    static_tokens = (
        StaticTokens(settings.static_tokens_file)
        if "static-token" in modes and settings.static_tokens_file
        else None
    )
    reviewer = (
        TokenReviewer(
            kubernetes_review(settings), cache_seconds=settings.token_review_cache_seconds
        )
        if "token-review" in modes
        else None
    )
    return Authenticator(modes, static_tokens=static_tokens, token_reviewer=reviewer)


def _claimed(user: str | None) -> Identity:
    """Auth mode "none": the name in x-tc-user, trusted as given; a name it
    can not take is refused rather than turned into `anonymous`, whose
    trainings the caller would then not find under their name."""
    if not user:
        return ANONYMOUS
    if not _CLAIMED_USER.fullmatch(user):
        raise Unauthenticated(
            "x-tc-user must be at most 128 characters of letters, digits and . _ @ : -"
        )
    return Identity(user)


def _checked(identity: Identity) -> Identity:
    # The user name becomes an owner: part of Redis keys, logs and listings.
    user = identity.user
    if not user or len(user) > MAX_USER_CHARS or not user.isprintable():
        raise Unauthenticated("the credentials name no usable user")
    return identity
