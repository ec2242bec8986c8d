"""Store records to v1 messages. Pure."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_core.phases import Phase
from trainconductor_core.record import TrainingEvent, TrainingRecord


def timestamp(ms: int | None) -> Timestamp | None:
    if ms is None:
        return None
    value = Timestamp()
    value.FromMilliseconds(ms)
    return value


STALLED_CONDITION = "Stalled"


def _conditions(record: TrainingRecord) -> list[pb.Condition]:
    conditions = [
        pb.Condition(
            type=c.type,
            status=c.status,
            reason=c.reason,
            message=c.message,
            last_transition_time=timestamp(c.last_transition_ms or None),
        )
        for c in record.conditions
    ]
    if _stalled(record):
        conditions.append(
            pb.Condition(
                type=STALLED_CONDITION,
                status="True",
                reason="NoProgressReports",
                message="its trainer has stopped reporting progress while it runs",
                last_transition_time=timestamp(record.stalled_since_ms),
            )
        )
    return conditions


def _stalled(record: TrainingRecord) -> bool:
    # A stall pass clears the mark of one no longer running; until it has,
    # only a running training reads as stalled.
    return record.stalled_since_ms is not None and record.phase == Phase.RUNNING


def training_to_proto(record: TrainingRecord) -> pb.Training:
    return pb.Training(
        id=record.id,
        spec=record.spec,
        owner=record.owner,
        phase=record.phase.to_proto(),
        reason=record.reason,
        message=record.message,
        conditions=_conditions(record),
        job_name=record.job_name,
        attempts=record.attempts,
        generation=record.generation,
        observed_generation=record.observed_generation,
        cancel_requested=record.cancel_requested,
        create_time=timestamp(record.create_time_ms),
        start_time=timestamp(record.start_time_ms),
        finish_time=timestamp(record.finish_time_ms),
        queue=record.queue,
        priority=record.priority,
        queue_position=record.queue_position,
        held=record.held,
        retries=record.retries,
        max_retries=record.max_retries,
        progress=record.progress,
        stalled=_stalled(record),
    )


def event_to_proto(event: TrainingEvent) -> pb.TrainingEvent:
    return pb.TrainingEvent(
        event_id=event.event_id,
        training_id=event.training_id,
        phase=event.phase.to_proto(),
        reason=event.reason,
        message=event.message,
        time=timestamp(event.time_ms),
        generation=event.generation,
        cancel_requested=event.cancel_requested,
        queue_position=event.queue_position,
        attempt=event.attempt,
        progress=event.progress,
        stalled=event.stalled,
    )
