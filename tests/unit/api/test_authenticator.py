"""Choosing among the auth modes for one call's credentials."""

from __future__ import annotations

import pytest

from tests.support import security
from trainconductor_api.authentication.authenticator import Authenticator
from trainconductor_api.authentication.credentials import Credentials, bearer_token
from trainconductor_api.authentication.errors import Unauthenticated
from trainconductor_api.authentication.static_tokens import StaticTokens
from trainconductor_api.authentication.token_review import Review, TokenReviewer
from trainconductor_api.identity import Identity


def reviewer() -> TokenReviewer:
    def review(token: str) -> Review:
        if token == "sa-token":
            user = "system:serviceaccount:team:trainer"
            return Review(Identity(user, frozenset({"system:serviceaccounts"}), "token-review"))
        return Review(None)

    return TokenReviewer(review, cache_seconds=10)


ALICE_CERT = Credentials(client_subject="O=ml,CN=alice", client_common_name="alice")


async def test_none_trusts_the_claimed_name_and_ignores_tokens() -> None:
    auth = Authenticator(["none"])
    identity = await auth.authenticate(Credentials(bearer_token="x", claimed_user="ada"))
    assert (identity.user, identity.authenticated) == ("ada", False)
    assert (await auth.authenticate(Credentials())).user == "anonymous"
    # A name it can not take is refused, not made anonymous: the caller would
    # not find their trainings under their name.
    for bad in ("ada\n", "jane doe", "jane/doe", "a" * 129):
        with pytest.raises(Unauthenticated, match="x-tc-user must be"):
            await auth.authenticate(Credentials(claimed_user=bad))


async def test_a_static_token_then_a_token_review(static_tokens: security.StaticTokens) -> None:
    auth = Authenticator(
        ["static-token", "token-review"],
        static_tokens=StaticTokens(static_tokens.path),
        token_reviewer=reviewer(),
    )
    alice = Credentials(bearer_token=static_tokens.alice.token)
    assert (await auth.authenticate(alice)).user == "alice"
    sa = await auth.authenticate(Credentials(bearer_token="sa-token"))
    assert sa.user == "system:serviceaccount:team:trainer"
    assert sa.groups == {"system:serviceaccounts"}
    with pytest.raises(Unauthenticated, match="not accepted"):
        await auth.authenticate(Credentials(bearer_token="guess"))


async def test_mtls_takes_the_certificate_when_no_token_is_sent(
    static_tokens: security.StaticTokens,
) -> None:
    auth = Authenticator(["mtls", "static-token"], static_tokens=StaticTokens(static_tokens.path))
    assert (await auth.authenticate(ALICE_CERT)).user == "alice"
    with pytest.raises(Unauthenticated):
        await auth.authenticate(
            Credentials(bearer_token="guess", client_subject="CN=alice", client_common_name="alice")
        )


@pytest.mark.parametrize(
    ("modes", "credentials"),
    [
        pytest.param(["mtls"], Credentials(claimed_user="alice"), id="mtls without a certificate"),
        pytest.param(["static-token"], ALICE_CERT, id="a certificate when only tokens count"),
        pytest.param(["static-token"], Credentials(), id="nothing at all"),
        pytest.param(
            ["mtls"],
            Credentials(client_subject="CN=x", client_common_name="x\x00y"),
            id="a user name with a control character",
        ),
    ],
)
async def test_refused(
    static_tokens: security.StaticTokens, modes: list[str], credentials: Credentials
) -> None:
    auth = Authenticator(modes, static_tokens=StaticTokens(static_tokens.path))
    with pytest.raises(Unauthenticated):
        await auth.authenticate(credentials)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic abc", id="another scheme"),
        pytest.param("Bearer", id="no token"),
        pytest.param("Bearer a b", id="a space in the token"),
        pytest.param("Bearer " + "x" * 20_000, id="an oversized token"),
    ],
)
def test_a_malformed_authorization_header_is_refused_without_echo(header: str) -> None:
    with pytest.raises(Unauthenticated) as err:
        bearer_token(header)
    assert header.partition(" ")[2][:8] not in str(err.value) or not header.partition(" ")[2]


def test_a_token_never_shows_in_the_credentials_repr() -> None:
    assert "hunter2" not in repr(Credentials(bearer_token="hunter2"))
