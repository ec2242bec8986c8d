"""The v1 `TrainingService`: validation, then the store; nothing else."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from trainconductor_api import metrics
from trainconductor_api.authorization import Access
from trainconductor_api.convert import event_to_proto, training_to_proto
from trainconductor_api.identity import current_identity
from trainconductor_api.log_request import log_request_of, log_response
from trainconductor_api.log_stream import LogStreamer, NoSuchAttempt
from trainconductor_api.pod_logs import LogsUnavailable
from trainconductor_api.queueing import QueuePolicy, is_queue_name
from trainconductor_api.status import abort_invalid, check_training_id, refuse_unknown_fields
from trainconductor_api.submission import call_trace_context, server_request_id
from trainconductor_api.unknown_fields import unknown_field_violations
from trainconductor_api.validation import (
    Limits,
    Violation,
    is_label_key,
    validate_request_id,
    validate_spec,
)
from trainconductor_api.visibility import visible_training
from trainconductor_api.watch_slots import WatchSlots
from trainconductor_core.errors import InvalidCursor, TrainingNotFound
from trainconductor_core.logs import training_id_var
from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingEvent, TrainingRecord
from trainconductor_core.store import ListFilter, TrainingStore

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_EVENT_ID = "0123456789-"
# Initial metadata of WatchTrainings: the event the stream starts after. A
# client that saw no event before the stream broke resumes from it, and so
# loses none of the events made while it was away.
RESUME_POINT_KEY = "x-tc-after-event-id"


class TrainingService(pb_grpc.TrainingServiceServicer):
    def __init__(
        self,
        store: TrainingStore,
        limits: Limits,
        access: Access,
        *,
        watch_poll_ms: int,
        watch_slots: WatchSlots,
        response_bytes: int,
        queues: QueuePolicy | None = None,
        logs: LogStreamer | None = None,
        log_slots: WatchSlots | None = None,
    ) -> None:
        """`queues`: whether trainings wait in Kueue's queues, and where by
        default (none: they never do); `logs`: where trainings' logs are read
        (none: they are not served), `log_slots` how many at once."""
        self._store = store
        self._queues = queues or QueuePolicy()
        self._limits = limits
        self._access = access
        self._watch_poll_ms = watch_poll_ms
        self._watch_slots = watch_slots
        self._response_bytes = response_bytes
        self._logs = logs
        self._log_slots = log_slots or WatchSlots(1)

    @asynccontextmanager
    async def _watching(
        self, context: grpc.aio.ServicerContext[Any, Any], method: str
    ) -> AsyncIterator[None]:
        """One of the replica's watch slots, or RESOURCE_EXHAUSTED; and the
        open-watches gauge while the watch lasts."""
        if not self._watch_slots.take():
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this API replica serves at most {self._watch_slots.limit} watches at once; "
                "retry shortly",
            )
        try:
            with metrics.ACTIVE_WATCHES.labels(method).track_inprogress():
                yield
        finally:
            self._watch_slots.give_back()

    async def _visible(self, training_id: str) -> TrainingRecord:
        return await visible_training(self._store, self._access, training_id)

    async def CreateTraining(
        self,
        request: pb.CreateTrainingRequest,
        context: grpc.aio.ServicerContext[pb.CreateTrainingRequest, pb.CreateTrainingResponse],
    ) -> pb.CreateTrainingResponse:
        identity = current_identity()
        violations = unknown_field_violations(request) or (
            validate_request_id(request.request_id)
            + validate_spec(request.spec, self._limits)
            + self._queues.violations(request.spec, identity)
        )
        if violations:
            metrics.REJECTED.inc()
            await abort_invalid(context, violations)
        placement = self._queues.place(request.spec, identity)
        record, created = await self._store.create(
            request.spec,
            owner=identity.user,
            request_id=request.request_id or server_request_id(),
            trace_context=call_trace_context(),
            queue=placement.queue,
            priority=placement.priority,
            max_retries=self._limits.retry_budget(request.spec),
        )
        training_id_var.set(record.id)
        if not created and record.spec != request.spec:
            # A retry sends what it sent before; another spec under the same
            # id is a mistake that returning the first training would hide.
            metrics.REJECTED.inc()
            await abort_invalid(
                context,
                [
                    Violation(
                        "request_id",
                        f"was used for training {record.id}, of another spec; "
                        "a new training needs a new request id",
                    )
                ],
            )
        (metrics.CREATED if created else metrics.DEDUPLICATED).inc()
        return pb.CreateTrainingResponse(training=training_to_proto(record))

    async def GetTraining(
        self,
        request: pb.GetTrainingRequest,
        context: grpc.aio.ServicerContext[pb.GetTrainingRequest, pb.GetTrainingResponse],
    ) -> pb.GetTrainingResponse:
        await refuse_unknown_fields(context, request)
        await check_training_id(context, request.id, "id")
        record = await self._visible(request.id)
        return pb.GetTrainingResponse(training=training_to_proto(record))

    async def ListTrainings(
        self,
        request: pb.ListTrainingsRequest,
        context: grpc.aio.ServicerContext[pb.ListTrainingsRequest, pb.ListTrainingsResponse],
    ) -> pb.ListTrainingsResponse:
        await refuse_unknown_fields(context, request)
        violations: list[Violation] = []
        if request.page_size < 0:
            violations.append(Violation("page_size", "must not be negative"))
        if request.phase not in pb.Phase.values():
            violations.append(Violation("phase", "is not a known phase"))
        for key in request.labels:
            if not is_label_key(key):
                violations.append(Violation(f"labels[{key[:64]!r}]", "is not a label key"))
        if request.queue and not is_queue_name(request.queue):
            violations.append(Violation("queue", "is not a LocalQueue name (a DNS-1123 label)"))
        if violations:
            await abort_invalid(context, violations)
        owner = self._access.owner_filter(current_identity(), request.owner)
        if owner is None:  # someone else's trainings: none the caller may see
            return pb.ListTrainingsResponse()
        where = ListFilter(
            phase=Phase.from_proto(request.phase) if request.phase else None,
            owner=owner,
            labels=dict(request.labels),
            queue=request.queue,
        )
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        try:
            records, token = await self._store.list_page(
                page_size=page_size, page_token=request.page_token, where=where
            )
        except InvalidCursor as err:
            await abort_invalid(context, [Violation("page_token", str(err))])
        trainings = [training_to_proto(r) for r in records]
        size = 0
        for kept, training in enumerate(trainings):
            size += training.ByteSize() + 8  # and its field's tag and length
            if size > self._response_bytes and kept:
                # The rest would not fit the largest message gRPC may send:
                # they come with the next page.
                token = self._store.page_token_after(trainings[kept - 1].id, where)
                trainings = trainings[:kept]
                break
        return pb.ListTrainingsResponse(trainings=trainings, next_page_token=token)

    async def CancelTraining(
        self,
        request: pb.CancelTrainingRequest,
        context: grpc.aio.ServicerContext[pb.CancelTrainingRequest, pb.CancelTrainingResponse],
    ) -> pb.CancelTrainingResponse:
        await refuse_unknown_fields(context, request)
        await check_training_id(context, request.id, "id")
        await self._visible(request.id)  # an owner never changes: checked once
        record, changed = await self._store.cancel(request.id)
        if changed:
            log.info("cancellation recorded", extra={"training_id": record.id})
        return pb.CancelTrainingResponse(training=training_to_proto(record))

    async def HoldTraining(
        self,
        request: pb.HoldTrainingRequest,
        context: grpc.aio.ServicerContext[pb.HoldTrainingRequest, pb.HoldTrainingResponse],
    ) -> pb.HoldTrainingResponse:
        record = await self._hold(request, request.id, context, held=True)
        return pb.HoldTrainingResponse(training=training_to_proto(record))

    async def ReleaseTraining(
        self,
        request: pb.ReleaseTrainingRequest,
        context: grpc.aio.ServicerContext[pb.ReleaseTrainingRequest, pb.ReleaseTrainingResponse],
    ) -> pb.ReleaseTrainingResponse:
        record = await self._hold(request, request.id, context, held=False)
        return pb.ReleaseTrainingResponse(training=training_to_proto(record))

    async def _hold(
        self,
        request: pb.HoldTrainingRequest | pb.ReleaseTrainingRequest,
        training_id: str,
        context: grpc.aio.ServicerContext[Any, Any],
        *,
        held: bool,
    ) -> TrainingRecord:
        """Holds or releases the training, as cancel does: its owner (or an
        admin) only, a finished one left as it finished."""
        await refuse_unknown_fields(context, request)
        await check_training_id(context, training_id, "id")
        record = await self._visible(training_id)  # an owner never changes: checked once
        if not record.queue:
            # Without a queue its Job runs at once: nothing can take it out
            # of a queue, and a suspended Job would hold its nodes' place.
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"training {training_id} waits in no queue; only a queued training can be "
                + ("held" if held else "released"),
            )
        record, changed = await self._store.hold(training_id, held=held)
        if changed:
            log.info(
                "hold recorded" if held else "release recorded", extra={"training_id": record.id}
            )
        return record

    async def WatchTraining(
        self,
        request: pb.WatchTrainingRequest,
        context: grpc.aio.ServicerContext[pb.WatchTrainingRequest, pb.WatchTrainingResponse],
    ) -> AsyncIterator[pb.WatchTrainingResponse]:
        await refuse_unknown_fields(context, request)
        await check_training_id(context, request.id, "id")
        await _check_event_id(context, request.after_event_id)
        record = await self._visible(request.id)
        if request.after_event_id:
            await self._store.check_events_kept(request.after_event_id, record.id)
        after = request.after_event_id or "0"
        async with self._watching(context, "WatchTraining"):
            while True:
                events = await self._store.training_events(
                    record.id, after=after, block_ms=self._watch_poll_ms
                )
                _stop_if_cancelled()
                if after != "0" and any(event.phase.is_final for event in events):
                    # Finishing trims the stream to its last events in the
                    # same script: a watch that fell further behind would
                    # read on past the trimmed ones without knowing.
                    await self._store.check_events_kept(after, record.id)
                for event in events:
                    yield pb.WatchTrainingResponse(event=event_to_proto(event))
                    after = event.event_id
                    if event.phase.is_final:
                        return
                if not events and (await self._store.get(record.id)).phase.is_final:
                    # Final before the watch began after its event, or since
                    # the read just made: send what came since, then end.
                    for event in await self._store.training_events(record.id, after=after):
                        yield pb.WatchTrainingResponse(event=event_to_proto(event))
                    return

    async def WatchTrainings(
        self,
        request: pb.WatchTrainingsRequest,
        context: grpc.aio.ServicerContext[pb.WatchTrainingsRequest, pb.WatchTrainingsResponse],
    ) -> AsyncIterator[pb.WatchTrainingsResponse]:
        await refuse_unknown_fields(context, request)
        await _check_event_id(context, request.after_event_id)
        owner = self._access.owner_filter(current_identity(), request.owner)
        if request.after_event_id:
            await self._store.check_events_kept(request.after_event_id)
        after = request.after_event_id or await self._store.last_event_id()
        owned: dict[str, bool] = {}
        # Where the client would resume now, and since when: a bookmark moves
        # it past the events this watch skipped once the watch has been
        # quiet for a poll period.
        told, told_at = after, time.monotonic()
        async with self._watching(context, "WatchTrainings"):
            await context.send_initial_metadata(((RESUME_POINT_KEY, after),))
            while True:
                events = await self._store.all_events(after=after, block_ms=self._watch_poll_ms)
                _stop_if_cancelled()
                for event in events:
                    after = event.event_id
                    if owner is None:  # someone else's: the stream stays open and quiet
                        continue
                    if owner and not await self._owned_by(event, owner, owned):
                        continue
                    told, told_at = after, time.monotonic()
                    yield pb.WatchTrainingsResponse(event=event_to_proto(event))
                # No bookmarks for a watch that shows nothing (owner None):
                # they would tell when another owner's trainings change.
                quiet = time.monotonic() - told_at >= self._watch_poll_ms / 1000
                if request.bookmarks and owner is not None and after != told and quiet:
                    told, told_at = after, time.monotonic()
                    yield pb.WatchTrainingsResponse(bookmark_event_id=after)

    async def StreamTrainingLogs(
        self,
        request: pb.StreamTrainingLogsRequest,
        context: grpc.aio.ServicerContext[
            pb.StreamTrainingLogsRequest, pb.StreamTrainingLogsResponse
        ],
    ) -> AsyncIterator[pb.StreamTrainingLogsResponse]:
        await refuse_unknown_fields(context, request)
        await check_training_id(context, request.id, "id")
        log_request = await log_request_of(context, request)
        record = await self._visible(request.id)
        ranks = max(record.spec.resources.nodes, 1)
        if request.rank >= ranks:
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"training {record.id} has {ranks} rank{'s' if ranks > 1 else ''}: "
                f"0 to {ranks - 1}",
            )
        if self._logs is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "this API does not serve training logs"
            )
        if not self._log_slots.take():
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this API replica serves at most {self._log_slots.limit} log streams at once; "
                "retry shortly",
            )
        try:
            with metrics.ACTIVE_WATCHES.labels("StreamTrainingLogs").track_inprogress():
                async for batch in self._logs.stream(log_request):
                    _stop_if_cancelled()
                    cut = sum(line.truncated for line in batch.lines)
                    sent = metrics.LOG_LINES_SENT.labels(batch.source.value, "false")
                    sent.inc(len(batch.lines) - cut)
                    if cut:
                        metrics.LOG_LINES_SENT.labels(batch.source.value, "true").inc(cut)
                    yield log_response(batch)
        except NoSuchAttempt as err:
            kept = (
                " (only its last attempt's log is kept once its pods are gone)" if err.kept else ""
            )
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"training {record.id} rank {request.rank} has no attempt {request.attempt}: "
                f"it ran {err.attempts}{kept}",
            )
        except LogsUnavailable as err:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{err}; retry shortly")
        finally:
            self._log_slots.give_back()

    async def _owned_by(self, event: TrainingEvent, owner: str, cache: dict[str, bool]) -> bool:
        if event.training_id not in cache:
            if len(cache) > 10_000:
                cache.clear()
            try:
                record = await self._store.get(event.training_id)
            except TrainingNotFound:
                cache[event.training_id] = False
            else:
                cache[event.training_id] = record.owner == owner
        return cache[event.training_id]


def _stop_if_cancelled() -> None:
    """Ends a watch whose call was cancelled while a Redis command was being
    sent. Python 3.11's `asyncio.wait_for`, which redis-py sends through,
    drops a cancellation that lands as the send completes (fixed in 3.12);
    the task still counts it, so the watch would otherwise go on for as long
    as the server runs."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _check_event_id(context: grpc.aio.ServicerContext[Any, Any], event_id: str) -> None:
    if event_id and (
        len(event_id) > 64 or event_id.count("-") != 1 or not set(event_id) <= set(_EVENT_ID)
    ):
        await abort_invalid(context, [Violation("after_event_id", "is not an event id")])
