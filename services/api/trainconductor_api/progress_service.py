"""The v1 `ProgressService`: a training pod reports its trainer's progress.

Who reports is the pod its token is bound to (pod_binding.py), and it
reports for its own training only. Under auth mode "none" (local
development) nobody is authenticated: a report names its training.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from trainconductor.v1 import progress_service_pb2 as pb
from trainconductor.v1 import progress_service_pb2_grpc as pb_grpc

from trainconductor_api import metrics
from trainconductor_api.authentication.credentials import credentials_of
from trainconductor_api.authentication.errors import AuthenticatorUnavailable, Unauthenticated
from trainconductor_api.authentication.pod_binding import PodBinding, ReportRefused
from trainconductor_api.identity import Identity, identity_var
from trainconductor_api.progress_report import as_recorded, describe, validate_progress
from trainconductor_api.status import (
    abort_invalid,
    abort_rate_limited,
    check_training_id,
    refuse_unknown_fields,
)
from trainconductor_api.token_bucket import TokenBuckets
from trainconductor_core.errors import TrainingFinished
from trainconductor_core.logs import training_id_var
from trainconductor_core.store import TrainingStore

log = logging.getLogger(__name__)

POD_TOKEN_METHOD = "pod-token"
_OUTCOMES = {name: metrics.PROGRESS_REPORTS.labels(name) for name in ("recorded", "event")}


class ProgressService(pb_grpc.ProgressServiceServicer):
    def __init__(
        self,
        store: TrainingStore,
        binding: PodBinding | None,
        buckets: TokenBuckets,
        *,
        event_interval_seconds: float,
    ) -> None:
        """`binding`: how a token names its training; None trusts the
        request's training_id (auth mode "none" only)."""
        self._store = store
        self._binding = binding
        self._buckets = buckets
        self._event_interval_ms = int(event_interval_seconds * 1000)

    async def ReportProgress(
        self,
        request: pb.ReportProgressRequest,
        context: grpc.aio.ServicerContext[pb.ReportProgressRequest, pb.ReportProgressResponse],
    ) -> pb.ReportProgressResponse:
        training_id = await self._reporting_training(request, context)
        training_id_var.set(training_id)
        await refuse_unknown_fields(context, request)
        violations = validate_progress(request.progress)
        if violations:
            metrics.PROGRESS_REPORTS.labels("invalid").inc()
            await abort_invalid(context, violations)
        wait = self._buckets.take(training_id)
        if wait:
            metrics.PROGRESS_REPORTS.labels("limited").inc()
            await abort_rate_limited(
                context,
                f"training {training_id} reports progress faster than this API takes; "
                "drop this report, the next one supersedes it",
                wait,
            )
        progress = as_recorded(request.progress)
        try:
            recorded = await self._store.report_progress(
                training_id,
                progress,
                event_interval_ms=self._event_interval_ms,
                message=describe(progress),
            )
        except TrainingFinished:
            metrics.PROGRESS_REPORTS.labels("finished").inc()
            raise
        if recorded.eta_ms is not None:
            progress.eta.FromMilliseconds(recorded.eta_ms)
        _OUTCOMES["event" if recorded.event else "recorded"].inc()
        return pb.ReportProgressResponse(training_id=training_id, progress=progress)

    async def _reporting_training(
        self, request: pb.ReportProgressRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> str:
        """The training the caller may report for, or the call aborted."""
        if self._binding is None:
            await check_training_id(context, request.training_id, "training_id")
            return request.training_id
        try:
            token = credentials_of(context, certificate=False).bearer_token
            if token is None:
                raise Unauthenticated(
                    "no credentials; report with the training pod's projected token "
                    "(authorization: Bearer <token>)"
                )
            pod, training_id = await self._binding.training_of(token)
        except Unauthenticated as err:
            metrics.PROGRESS_REPORTS.labels("refused").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
        except ReportRefused as err:
            metrics.PROGRESS_REPORTS.labels("refused").inc()
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
        except AuthenticatorUnavailable:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "the token can not be checked right now; retry shortly",
            )
        identity_var.set(Identity(f"pod:{pod.namespace}/{pod.name}", method=POD_TOKEN_METHOD))
        if request.training_id and request.training_id != training_id:
            metrics.PROGRESS_REPORTS.labels("refused").inc()
            await abort_invalid_owner(context, request.training_id, training_id)
        return training_id


async def abort_invalid_owner(
    context: grpc.aio.ServicerContext[Any, Any], asked: str, own: str
) -> None:
    await context.abort(
        grpc.StatusCode.PERMISSION_DENIED,
        f"this pod reports for training {own} only, not {asked[:64]!r}",
    )
