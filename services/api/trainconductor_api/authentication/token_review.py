"""Kubernetes ServiceAccount tokens, checked by the apiserver (TokenReview).

In-cluster clients send their projected token as a bearer token. The
apiserver says whether it is valid for our audience and whose it is; the
answer is cached briefly (keyed by the token's digest, never the token), so
a busy client costs one review per token per few seconds. Concurrent calls
with the same token share one review.

The `kubernetes` package is imported only when this mode is on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainconductor_api.authentication.errors import AuthenticatorUnavailable
from trainconductor_api.identity import Identity
from trainconductor_api.settings import ApiSettings

log = logging.getLogger(__name__)

METHOD = "token-review"
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class BoundPod:
    """The pod a token is bound to (a projected ServiceAccount token is),
    as the apiserver's review says in its extra."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Review:
    """The apiserver's answer: who the token belongs to, or None; and the
    pod it is bound to, if any."""

    identity: Identity | None
    pod: BoundPod | None = None


# Sends one TokenReview; blocking (the Kubernetes client is synchronous).
ReviewCall = Callable[[str], Review]


class TokenReviewer:
    def __init__(
        self,
        review: ReviewCall,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._review = review
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[bytes, tuple[float, Review]] = {}
        self._in_flight: dict[bytes, asyncio.Task[Review]] = {}

    async def identity(self, token: str) -> Identity | None:
        return (await self.review(token)).identity

    async def review(self, token: str) -> Review:
        key = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        task = self._in_flight.get(key)
        if task is None:
            # A task of its own: a caller that goes away does not cancel the
            # review the others wait for.
            task = asyncio.create_task(self._review_and_remember(key, token))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    async def _review_and_remember(self, key: bytes, token: str) -> Review:
        now = self._clock()
        review = await asyncio.to_thread(self._review, token)
        self._remember(key, review, self._ttl(token, review, now))
        return review

    def _forget(self, key: bytes, done: asyncio.Task[Review]) -> None:
        self._in_flight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved, so a failure nobody awaited is not reported twice

    def _ttl(self, token: str, review: Review, now: float) -> float:
        ttl = self._cache_seconds
        expiry = _jwt_expiry(token)
        if review.identity is not None and expiry is not None:
            # A token accepted shortly before it expires is not accepted after.
            ttl = min(ttl, expiry - self._wall_clock())
        return now + ttl

    def _remember(self, key: bytes, review: Review, until: float) -> None:
        if until <= self._clock():
            return
        if len(self._cache) >= _MAX_CACHED:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
        self._cache[key] = (until, review)


def _jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, unverified: used only to shorten caching of a
    token the apiserver accepted (so it is genuine)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload.get("exp") if isinstance(payload, dict) else None
    except ValueError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


def kubernetes_client(settings: ApiSettings) -> Any:
    """A client of the apiserver of the kubeconfig (or, without one, of the
    cluster the pod runs in)."""
    from kubernetes import client, config  # here: only with a mode that needs it

    configuration = client.Configuration()
    if settings.kubeconfig:
        config.load_kube_config(
            config_file=str(settings.kubeconfig), client_configuration=configuration
        )
    else:
        config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def kubernetes_review(settings: ApiSettings, audience: str | None = None) -> ReviewCall:
    """A `ReviewCall` that asks the apiserver of the kubeconfig (or, without
    one, of the cluster the pod runs in), for `audience` (by default the
    API's, `token_review_audience`)."""
    import urllib3  # here: only with token-review on
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client.AuthenticationV1Api(kubernetes_client(settings))
    audience = audience or settings.token_review_audience
    timeout = settings.token_review_timeout_seconds

    def review(token: str) -> Review:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": [audience]},
        }
        try:
            # Without preloading, the raw urllib3 response comes back: no
            # model object that would carry the token in its repr.
            response: Any = api.create_token_review(
                body,  # type: ignore[arg-type]  # validate_call makes it a V1TokenReview
                _preload_content=False,
                _request_timeout=timeout,
            )
            answer = json.loads(response.data)
        except ApiException as err:
            # Status and reason only: the body of a TokenReview carries the token.
            log.error(
                "TokenReview failed; the API's service account needs the "
                "system:auth-delegator role",
                extra={"status": err.status, "reason": str(err.reason or "")[:200]},
            )
            raise AuthenticatorUnavailable(f"TokenReview: HTTP {err.status}") from None
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            log.warning("TokenReview failed", extra={"error": type(err).__name__})
            raise AuthenticatorUnavailable(f"TokenReview: {type(err).__name__}") from None
        return _review_of(answer.get("status") or {}, audience)

    return review


def _review_of(status: dict[str, Any], audience: str) -> Review:
    if not status.get("authenticated"):
        return Review(None)
    # Without our audience in the answer the token is valid only for another
    # audience (with none named: the apiserver's own), not for this API.
    if audience not in (status.get("audiences") or ()):
        return Review(None)
    user = status.get("user") or {}
    username = user.get("username")
    if not isinstance(username, str) or not username:
        return Review(None)
    groups = frozenset(g for g in user.get("groups") or () if isinstance(g, str))
    return Review(Identity(username, groups, METHOD), _bound_pod(username, user.get("extra")))


# What the apiserver puts in a review of a pod-bound token's extra (each a
# list of one value). Its namespace is the ServiceAccount's: a pod runs as
# an account of its own namespace.
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def _bound_pod(username: str, extra: Any) -> BoundPod | None:
    if not isinstance(extra, dict) or not username.startswith(_SERVICE_ACCOUNT_PREFIX):
        return None
    namespace = username.removeprefix(_SERVICE_ACCOUNT_PREFIX).split(":", 1)[0]
    names, uids = extra.get(POD_NAME_EXTRA), extra.get(POD_UID_EXTRA)
    if not (isinstance(names, list) and isinstance(uids, list) and len(names) == len(uids) == 1):
        return None
    name, uid = names[0], uids[0]
    if not (isinstance(name, str) and isinstance(uid, str) and name and uid and namespace):
        return None
    return BoundPod(namespace, name, uid)
