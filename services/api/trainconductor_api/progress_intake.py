"""Takes a trainer's progress report, whichever way it came (gRPC
ProgressService, or the Kubeflow Trainer status protocol over HTTP): who
reports (the pod its token is bound to, pod_binding.py), for which
training, whether the report is valid and within the training's rate, and
then the store. Failures are exceptions each transport turns into its own
answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainconductor.v1 import progress_pb2

from trainconductor_api import metrics
from trainconductor_api.authentication.errors import Unauthenticated
from trainconductor_api.authentication.pod_binding import PodBinding, ReportRefused
from trainconductor_api.identity import Identity, identity_var
from trainconductor_api.progress_report import as_recorded, describe, validate_progress
from trainconductor_api.token_bucket import TokenBuckets
from trainconductor_api.validation import Violation
from trainconductor_core.errors import TrainingFinished
from trainconductor_core.ids import is_training_id
from trainconductor_core.logs import training_id_var
from trainconductor_core.store import TrainingStore

POD_TOKEN_METHOD = "pod-token"
_OUTCOMES = {
    name: metrics.PROGRESS_REPORTS.labels(name)
    for name in ("recorded", "event", "invalid", "limited", "refused", "finished")
}


class InvalidReport(Exception):
    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations


class RateLimited(Exception):
    def __init__(self, training_id: str, wait_seconds: float) -> None:
        super().__init__(
            f"training {training_id} reports progress faster than this API takes; "
            "drop this report, the next one supersedes it"
        )
        self.wait_seconds = wait_seconds


@dataclass(frozen=True)
class Recorded:
    training_id: str
    progress: progress_pb2.Progress


class ProgressIntake:
    def __init__(
        self,
        store: TrainingStore,
        binding: PodBinding | None,
        buckets: TokenBuckets,
        *,
        event_interval_seconds: float,
    ) -> None:
        """`binding`: how a token names its training; None trusts the
        training the report names (auth mode "none" only)."""
        self._store = store
        self._binding = binding
        self._buckets = buckets
        self._event_interval_ms = int(event_interval_seconds * 1000)

    async def training_of(self, token: str | None, named: str, field: str) -> str:
        """The training the caller may report for: its pod's, which `named`
        (the request's `field`), when given, must be. Raises
        `Unauthenticated`, `ReportRefused` (PERMISSION_DENIED),
        `AuthenticatorUnavailable` or `InvalidReport`."""
        if self._binding is None:
            if not named or not is_training_id(named):
                raise InvalidReport([Violation(field, "must name a training")])
            return named
        try:
            if token is None:
                raise Unauthenticated(
                    "no credentials; report with the training pod's projected token "
                    "(authorization: Bearer <token>)"
                )
            pod, training_id = await self._binding.training_of(token)
            identity_var.set(Identity(f"pod:{pod.namespace}/{pod.name}", method=POD_TOKEN_METHOD))
            if named and named != training_id:
                raise ReportRefused(
                    f"this pod reports for training {training_id} only, not {named[:64]!r}"
                )
        except (Unauthenticated, ReportRefused):
            _OUTCOMES["refused"].inc()
            raise
        return training_id

    async def record(self, training_id: str, progress: progress_pb2.Progress) -> Recorded:
        """Validates, limits and records a report of `training_id`. Raises
        `InvalidReport`, `RateLimited`, `TrainingFinished`,
        `TrainingNotFound` or the store's outage errors."""
        training_id_var.set(training_id)
        violations = validate_progress(progress)
        if violations:
            _OUTCOMES["invalid"].inc()
            raise InvalidReport(violations)
        wait = self._buckets.take(training_id)
        if wait:
            _OUTCOMES["limited"].inc()
            raise RateLimited(training_id, wait)
        recorded = as_recorded(progress)
        try:
            outcome = await self._store.report_progress(
                training_id,
                recorded,
                event_interval_ms=self._event_interval_ms,
                message=describe(recorded),
            )
        except TrainingFinished:
            _OUTCOMES["finished"].inc()
            raise
        if outcome.eta_ms is not None:
            recorded.eta.FromMilliseconds(outcome.eta_ms)
        _OUTCOMES["event" if outcome.event else "recorded"].inc()
        return Recorded(training_id, recorded)
