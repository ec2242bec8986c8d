"""TokenReview answers: cached briefly, shared by concurrent calls, and
checked for our audience."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import pytest

from trainconductor_api.authentication.errors import AuthenticatorUnavailable
from trainconductor_api.authentication.token_review import Review, TokenReviewer, _review_of
from trainconductor_api.identity import Identity

SA = Identity("system:serviceaccount:ns:sa", frozenset(), "token-review")


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Apiserver:
    def __init__(self, answer: Review | None = None) -> None:
        self.answer = answer or Review(SA)
        self.reviews = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self, token: str) -> Review:
        self.reviews += 1
        self.release.wait(5)
        return self.answer


def jwt(exp: float) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    return f"e30.{payload}.sig"


async def test_answers_are_cached_for_a_while_then_asked_again() -> None:
    clock, apiserver = Clock(), Apiserver()
    reviewer = TokenReviewer(apiserver, cache_seconds=10, clock=clock)
    assert await reviewer.identity("t") == SA
    assert await reviewer.identity("t") == SA
    assert apiserver.reviews == 1
    clock.now += 11
    await reviewer.identity("t")
    assert apiserver.reviews == 2


async def test_refusals_are_cached_too() -> None:
    apiserver = Apiserver(Review(None))
    reviewer = TokenReviewer(apiserver, cache_seconds=10, clock=Clock())
    for _ in range(5):
        assert await reviewer.identity("garbage") is None
    assert apiserver.reviews == 1


async def test_a_token_is_not_accepted_from_the_cache_after_it_expires() -> None:
    clock, wall, apiserver = Clock(), Clock(50_000.0), Apiserver()
    reviewer = TokenReviewer(apiserver, cache_seconds=60, clock=clock, wall_clock=wall)
    token = jwt(exp=50_002.0)
    await reviewer.identity(token)
    clock.now += 3
    await reviewer.identity(token)
    assert apiserver.reviews == 2


async def test_concurrent_calls_with_one_token_share_one_review() -> None:
    apiserver = Apiserver()
    apiserver.release.clear()
    reviewer = TokenReviewer(apiserver, cache_seconds=10, clock=Clock())
    calls = [asyncio.create_task(reviewer.identity("t")) for _ in range(20)]
    await asyncio.sleep(0.05)
    apiserver.release.set()
    assert await asyncio.gather(*calls) == [SA] * 20
    assert apiserver.reviews == 1


async def test_an_unreachable_apiserver_is_not_cached() -> None:
    failures = 0

    def down(token: str) -> Review:
        nonlocal failures
        failures += 1
        raise AuthenticatorUnavailable("TokenReview: HTTP 503")

    reviewer = TokenReviewer(down, cache_seconds=10, clock=Clock())
    for _ in range(2):
        with pytest.raises(AuthenticatorUnavailable):
            await reviewer.identity("t")
    assert failures == 2


@pytest.mark.parametrize(
    ("status", "user"),
    [
        pytest.param(
            {
                "authenticated": True,
                "audiences": ["tc"],
                "user": {"username": "u", "groups": ["g"]},
            },
            "u",
            id="authenticated for our audience",
        ),
        pytest.param(
            {"authenticated": True, "audiences": ["other"], "user": {"username": "u"}},
            None,
            id="authenticated for another audience",
        ),
        pytest.param(
            {"authenticated": True, "user": {"username": "u"}},
            None,
            id="no audience named: only the apiserver's own",
        ),
        pytest.param({"authenticated": False, "error": "expired"}, None, id="not authenticated"),
        pytest.param({"authenticated": True, "audiences": ["tc"]}, None, id="no user"),
    ],
)
def test_the_apiserver_answer(status: dict[str, object], user: str | None) -> None:
    identity = _review_of(status, "tc").identity
    assert (identity.user if identity else None) == user
