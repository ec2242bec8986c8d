"""The controller's own errors: the Kubernetes API's failures, each known
retryable or permanent, and the loss of the Lease."""

from __future__ import annotations

from trainconductor_core.errors import TrainConductorError


class KubernetesError(TrainConductorError):
    """A Kubernetes API call failed; `retryable` says whether to try again."""

    def __init__(self, verb: str, resource: str, status: int, reason: str) -> None:
        # Cut short: the API server's message can echo back what was sent.
        super().__init__(f"{verb} {resource}: HTTP {status} {reason[:300]}")
        self.status = status
        self.retryable = status == 0 or status == 429 or status >= 500


class Gone(KubernetesError):
    """410: the resourceVersion is too old to watch from; list again."""


class NotLeader(TrainConductorError):
    """This replica lost the Lease: it must not act."""
