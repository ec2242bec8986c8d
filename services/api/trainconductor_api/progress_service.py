"""The v1 `ProgressService`: a training pod reports its trainer's progress.

Who reports is the pod its token is bound to (pod_binding.py), and it
reports for its own training only. Under auth mode "none" (local
development) nobody is authenticated: a report names its training.
"""

from __future__ import annotations

import grpc
from trainconductor.v1 import progress_service_pb2 as pb
from trainconductor.v1 import progress_service_pb2_grpc as pb_grpc

from trainconductor_api.authentication.credentials import credentials_of
from trainconductor_api.authentication.errors import AuthenticatorUnavailable, Unauthenticated
from trainconductor_api.authentication.pod_binding import ReportRefused
from trainconductor_api.progress_intake import InvalidReport, ProgressIntake, RateLimited
from trainconductor_api.status import abort_invalid, abort_rate_limited, refuse_unknown_fields


class ProgressService(pb_grpc.ProgressServiceServicer):
    def __init__(self, intake: ProgressIntake) -> None:
        self._intake = intake

    async def ReportProgress(
        self,
        request: pb.ReportProgressRequest,
        context: grpc.aio.ServicerContext[pb.ReportProgressRequest, pb.ReportProgressResponse],
    ) -> pb.ReportProgressResponse:
        try:
            token = credentials_of(context, certificate=False).bearer_token
            training_id = await self._intake.training_of(token, request.training_id, "training_id")
        except Unauthenticated as err:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
        except ReportRefused as err:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
        except AuthenticatorUnavailable:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "the token can not be checked right now; retry shortly"
            )
        except InvalidReport as err:
            await abort_invalid(context, err.violations)
        await refuse_unknown_fields(context, request)
        try:
            recorded = await self._intake.record(training_id, request.progress)
        except InvalidReport as err:
            await abort_invalid(context, err.violations)
        except RateLimited as err:
            await abort_rate_limited(context, str(err), err.wait_seconds)
        return pb.ReportProgressResponse(
            training_id=recorded.training_id, progress=recorded.progress
        )
