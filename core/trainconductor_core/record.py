"""A training as Redis records it, and the values the store reads and writes.

The spec is kept as the v1 `TrainingSpec` message (stored in its protobuf
encoding, base64);
everything the controller observes sits beside it as plain fields.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import orjson
from trainconductor.v1 import progress_pb2
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_core.phases import Phase


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_ms: int = 0


@dataclass(frozen=True)
class TrainingRecord:
    id: str
    spec: pb.TrainingSpec
    owner: str
    phase: Phase
    reason: str
    message: str
    generation: int
    observed_generation: int
    cancel_requested: bool
    create_time_ms: int
    start_time_ms: int | None = None
    finish_time_ms: int | None = None
    job_name: str = ""
    attempts: int = 0
    conditions: tuple[Condition, ...] = ()
    trace_context: dict[str, str] = field(default_factory=dict)
    # The queue (Kueue LocalQueue) and priority (WorkloadPriorityClass) it
    # was recorded with: the spec's, or the operator's defaults; "" for none.
    queue: str = ""
    priority: str = ""
    # Its place in the queue while it waits, from 1; 0: not waiting, or unknown.
    queue_position: int = 0
    # Held by its owner: out of its queue until released.
    held: bool = False
    # The retry budget it was recorded with (the spec's, or the operator's
    # default), and the retries spent: failed attempts that were retried.
    max_retries: int = 0
    retries: int = 0
    # The trainer's latest progress report, with its ETA; None: never reported.
    progress: progress_pb2.Progress | None = None
    # When it was marked stalled (RUNNING, no report for too long); None: not.
    stalled_since_ms: int | None = None

    @classmethod
    def from_hash(cls, values: dict[str, str]) -> TrainingRecord:
        spec = decode_spec(values["spec"])
        conditions = tuple(Condition(**c) for c in orjson.loads(values.get("conditions") or "[]"))
        return cls(
            id=values["id"],
            spec=spec,
            owner=values["owner"],
            phase=Phase(values["phase"]),
            reason=values.get("reason", ""),
            message=values.get("message", ""),
            generation=int(values["generation"]),
            observed_generation=int(values.get("observed_generation") or 0),
            cancel_requested=values.get("cancel_requested") == "1",
            create_time_ms=int(values["create_time"]),
            start_time_ms=_optional_int(values.get("start_time")),
            finish_time_ms=_optional_int(values.get("finish_time")),
            job_name=values.get("job_name", ""),
            attempts=int(values.get("attempts") or 0),
            conditions=conditions,
            trace_context=orjson.loads(values.get("trace_context") or "{}"),
            queue=values.get("queue", ""),
            priority=values.get("priority", ""),
            queue_position=int(values.get("queue_position") or 0),
            held=values.get("held") == "1",
            max_retries=int(values.get("max_retries") or 0),
            retries=int(values.get("retries") or 0),
            progress=decode_progress(values.get("progress"), values.get("progress_eta")),
            stalled_since_ms=_optional_int(values.get("stalled_since")),
        )

    def new_hash(self) -> dict[str, str]:
        """The hash a new training is stored as, read back by `from_hash`
        (what only the controller sets later is left out, and so are a
        queue and a priority it has none of)."""
        values = {
            "id": self.id,
            "spec": encode_spec(self.spec),
            "owner": self.owner,
            "phase": self.phase.value,
            "reason": self.reason,
            "message": self.message,
            "generation": str(self.generation),
            "observed_generation": str(self.observed_generation),
            "cancel_requested": "1" if self.cancel_requested else "0",
            "create_time": str(self.create_time_ms),
            "attempts": str(self.attempts),
            "trace_context": orjson.dumps(self.trace_context).decode(),
        }
        if self.queue:
            values["queue"] = self.queue
        if self.priority:
            values["priority"] = self.priority
        if self.max_retries:
            values["max_retries"] = str(self.max_retries)
        return values


@dataclass(frozen=True)
class StatusUpdate:
    """What the controller observed, written as of `observed_generation`."""

    observed_generation: int
    phase: Phase
    reason: str
    message: str
    job_name: str = ""
    attempts: int = 0
    conditions: tuple[Condition, ...] = ()
    start_time_ms: int | None = None
    finish_time_ms: int | None = None
    # Its place in its queue, from 1; 0 when it does not wait in one.
    queue_position: int = 0
    # Retries spent so far (failed attempts that were retried).
    retries: int = 0

    def conditions_json(self) -> str:
        return json.dumps([c.__dict__ for c in self.conditions], separators=(",", ":"))


@dataclass(frozen=True)
class TrainingEvent:
    event_id: str
    training_id: str
    phase: Phase
    reason: str
    message: str
    time_ms: int
    generation: int
    cancel_requested: bool
    queue_position: int = 0
    # The attempt the training was at; 0 before its first Job.
    attempt: int = 0
    # A progress event's report (reason Progress or ProgressResumed).
    progress: progress_pb2.Progress | None = None
    # A stall event (reason Stalled).
    stalled: bool = False

    @classmethod
    def from_stream(cls, event_id: str, values: dict[str, str]) -> TrainingEvent:
        return cls(
            event_id=event_id,
            training_id=values["training_id"],
            phase=Phase(values["phase"]),
            reason=values["reason"],
            message=values["message"],
            time_ms=int(values["time"]),
            generation=int(values["generation"]),
            cancel_requested=values["cancel_requested"] == "1",
            queue_position=int(values.get("queue_position") or 0),
            attempt=int(values.get("attempt") or 0),
            progress=decode_progress(values.get("progress"), values.get("progress_eta")),
            stalled=values.get("stalled") == "1",
        )


@dataclass(frozen=True)
class Change:
    """An entry of the change feed: this training's desired state changed."""

    entry_id: str
    training_id: str
    generation: int


def encode_spec(spec: pb.TrainingSpec) -> str:
    """The spec as stored: base64 of its protobuf encoding, which parses ten
    times faster than its JSON form and keeps unknown fields of newer APIs."""
    return base64.b64encode(spec.SerializeToString(deterministic=True)).decode()


def decode_spec(stored: str) -> pb.TrainingSpec:
    return pb.TrainingSpec.FromString(base64.b64decode(stored))


def encode_progress(progress: progress_pb2.Progress) -> str:
    """A progress report as stored: base64 of its protobuf encoding, which
    keeps a NaN loss as NaN (JSON has no NaN)."""
    return base64.b64encode(progress.SerializeToString(deterministic=True)).decode()


def decode_progress(stored: str | None, eta_ms: str | None = None) -> progress_pb2.Progress | None:
    """The stored report, with the ETA the store computed from the step rate
    (kept beside it: the report is stored as the trainer sent it)."""
    if not stored:
        return None
    progress = progress_pb2.Progress.FromString(base64.b64decode(stored))
    if eta_ms:
        progress.eta.FromMilliseconds(int(eta_ms))
    return progress


def _optional_int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None
