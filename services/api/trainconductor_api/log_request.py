"""StreamTrainingLogs' request checked and its batches as responses."""

from __future__ import annotations

from typing import Any

import grpc
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_api.log_lines import LogTime
from trainconductor_api.log_stream import LogBatch, LogRequest, Source
from trainconductor_api.status import abort_invalid
from trainconductor_api.validation import Violation

MAX_TAIL_LINES = 100_000
# Kubernetes keeps no log older than its pods; a year is beyond any.
MAX_SINCE_SECONDS = 366 * 24 * 3600
_SOURCES = {Source.POD: pb.LOG_SOURCE_POD, Source.KEPT: pb.LOG_SOURCE_KEPT}


def log_request_violations(request: pb.StreamTrainingLogsRequest) -> list[Violation]:
    violations = []
    if request.rank < 0:
        violations.append(Violation("rank", "must not be negative"))
    if request.attempt < 0:
        violations.append(Violation("attempt", "must not be negative (0 is the latest)"))
    if not 0 <= request.tail_lines <= MAX_TAIL_LINES:
        violations.append(Violation("tail_lines", f"must be from 0 to {MAX_TAIL_LINES}"))
    if request.HasField("since"):
        since = request.since
        if since.seconds < 0 or since.nanos < 0 or (since.seconds == 0 and since.nanos == 0):
            violations.append(Violation("since", "must be positive"))
        elif since.seconds > MAX_SINCE_SECONDS:
            violations.append(Violation("since", "must be at most a year"))
    if request.HasField("after_time") and (
        request.after_time.seconds < 0 or not 0 <= request.after_time.nanos < 1_000_000_000
    ):
        violations.append(Violation("after_time", "is not a time"))
    return violations


async def log_request_of(
    context: grpc.aio.ServicerContext[Any, Any], request: pb.StreamTrainingLogsRequest
) -> LogRequest:
    """The request as the streamer takes it; INVALID_ARGUMENT naming each
    bad field."""
    violations = log_request_violations(request)
    if violations:
        await abort_invalid(context, violations)
    since = None
    if request.HasField("since"):
        # Whole seconds, as Kubernetes takes them: a part of one counts whole.
        since = request.since.seconds + (1 if request.since.nanos else 0)
    after = None
    if request.HasField("after_time"):
        after = LogTime(request.after_time.seconds, request.after_time.nanos)
    return LogRequest(
        training_id=request.id,
        rank=request.rank,
        attempt=request.attempt,
        tail_lines=request.tail_lines or None,
        since_seconds=since,
        follow=request.follow,
        after=after,
    )


def log_response(batch: LogBatch) -> pb.StreamTrainingLogsResponse:
    response = pb.StreamTrainingLogsResponse(
        rank=batch.rank,
        attempt=batch.attempt,
        pod=batch.pod,
        source=_SOURCES[batch.source],
        earlier_lines_dropped=batch.earlier_dropped,
    )
    for line in batch.lines:
        out = response.lines.add(text=line.text, truncated=line.truncated)
        if line.time is not None:
            out.time.seconds, out.time.nanos = line.time.seconds, line.time.nanos
    return response
