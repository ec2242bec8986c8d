"""Which training a progress report comes from: the pod its token is bound to.

A training pod gets a projected ServiceAccount token for the progress
audience (the controller mounts it). The apiserver's TokenReview says the
token is genuine, unexpired and bound to a pod that still exists, and names
that pod (name and uid). The pod, read from the apiserver, names its
training (its label) and the Job that owns it; the Job must be the one the
training's record names, in the namespace the trainings run in. A pod that
anyone could make with such a label in another namespace, or one of a Job
that is not the training's, reports for nothing.

Reviews are cached by the token's digest (tokenreview.py), the pods by their
uid (a pod's owner and labels do not change; a new pod has a new uid), so a
trainer reporting every second costs the apiserver one review per cache
period, not one per report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from trainconductor_api.authentication.errors import AuthenticatorUnavailable, Unauthenticated
from trainconductor_api.authentication.token_review import BoundPod, TokenReviewer
from trainconductor_core.errors import TrainingNotFound

log = logging.getLogger(__name__)

# The controller's label on a training's pods (set in the Job's template).
TRAINING_ID_LABEL = "trainconductor.dev/training-id"
_MAX_PODS_CACHED = 10_000


class ReportRefused(Exception):
    """The token is genuine, but its pod reports for no training, or not for
    the one asked (PERMISSION_DENIED)."""


@dataclass(frozen=True)
class PodOwner:
    """What a pod says of its training: its uid, its training label and the
    Job that controls it."""

    uid: str
    training_id: str
    job_name: str


# Reads a pod (namespace, name); None when it does not exist. Blocking.
ReadPod = Callable[[str, str], PodOwner | None]
# The Job name the training's record names ("" before its Job is made).
JobOfTraining = Callable[[str], Awaitable[str]]


class PodBinding:
    def __init__(
        self,
        reviewer: TokenReviewer,
        read_pod: ReadPod,
        job_of_training: JobOfTraining,
        *,
        namespace: str,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`namespace`: where training pods run; a pod elsewhere reports for
        nothing."""
        self._reviewer = reviewer
        self._read_pod = read_pod
        self._job_of_training = job_of_training
        self._namespace = namespace
        self._cache_seconds = cache_seconds
        self._clock = clock
        # pod uid -> (until, training id); least recently used first
        self._pods: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def training_of(self, token: str) -> tuple[BoundPod, str]:
        """The pod the token is bound to and its training's id. Raises
        `Unauthenticated` (a token not genuine, expired, or bound to no
        pod), `ReportRefused` (a pod of no training of ours) or
        `AuthenticatorUnavailable` (the apiserver did not answer)."""
        review = await self._reviewer.review(token)
        if review.identity is None:
            raise Unauthenticated("the bearer token was not accepted for progress reports")
        pod = review.pod
        if pod is None:
            raise Unauthenticated(
                "the bearer token is bound to no pod; report with the training pod's "
                "projected token (the file TC_PROGRESS_TOKEN_FILE names)"
            )
        cached = self._pods.get(pod.uid)
        if cached is not None and cached[0] > self._clock():
            self._pods.move_to_end(pod.uid)
            return pod, cached[1]
        training_id = await self._check(pod)
        self._pods[pod.uid] = (self._clock() + self._cache_seconds, training_id)
        if len(self._pods) > _MAX_PODS_CACHED:
            self._pods.popitem(last=False)
        return pod, training_id

    async def _check(self, pod: BoundPod) -> str:
        if pod.namespace != self._namespace:
            raise ReportRefused(
                f"pod {pod.namespace}/{pod.name} is not in the trainings' namespace"
            )
        owner = await asyncio.to_thread(self._read_pod, pod.namespace, pod.name)
        if owner is None or owner.uid != pod.uid:
            # The review found it; it has gone (or been replaced) since.
            raise Unauthenticated(f"pod {pod.namespace}/{pod.name} of the token no longer exists")
        if not owner.training_id or not owner.job_name:
            raise ReportRefused(f"pod {pod.namespace}/{pod.name} belongs to no training")
        try:
            job = await self._job_of_training(owner.training_id)
        except TrainingNotFound:
            raise ReportRefused(f"pod {pod.namespace}/{pod.name} belongs to no training") from None
        if job != owner.job_name:
            raise ReportRefused(
                f"pod {pod.namespace}/{pod.name} is not of training {owner.training_id}'s Job"
            )
        return owner.training_id


def kubernetes_pods(api_client: Any, timeout_seconds: float) -> ReadPod:
    """A `ReadPod` through the apiserver (the API's Role: pods get)."""
    import urllib3  # here: only with progress reports by pod token on
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)

    def read(namespace: str, name: str) -> PodOwner | None:
        try:
            response: Any = core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=timeout_seconds
            )
            pod = json.loads(response.data)
        except ApiException as err:
            if err.status == 404:
                return None
            log.error(
                "reading a training pod failed; the API's Role needs pods get",
                extra={"status": err.status, "reason": str(err.reason or "")[:200]},
            )
            raise AuthenticatorUnavailable(f"reading the pod: HTTP {err.status}") from None
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            log.warning("reading a training pod failed", extra={"error": type(err).__name__})
            raise AuthenticatorUnavailable(f"reading the pod: {type(err).__name__}") from None
        return pod_owner(pod)

    return read


def pod_owner(pod: dict[str, Any]) -> PodOwner:
    """A pod's uid, training label and controlling Job, from its JSON."""
    metadata = pod.get("metadata") or {}
    job = next(
        (
            ref.get("name", "")
            for ref in metadata.get("ownerReferences") or ()
            if ref.get("controller")
            and ref.get("kind") == "Job"
            and str(ref.get("apiVersion", "")).startswith("batch/")
        ),
        "",
    )
    labels = metadata.get("labels") or {}
    return PodOwner(str(metadata.get("uid", "")), str(labels.get(TRAINING_ID_LABEL, "")), job)
