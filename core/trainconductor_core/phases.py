"""The training phases, which of them are final and which active.

Phases are stored in Redis by name (the v1 enum's name without its prefix),
so the stored form reads well in `redis-cli` and survives enum renumbering.
"""

from __future__ import annotations

from enum import StrEnum

from trainconductor.v1 import training_service_pb2 as pb


class Phase(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_PHASES

    def to_proto(self) -> pb.Phase.ValueType:
        return _TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: pb.Phase.ValueType) -> Phase:
        return cls(pb.Phase.Name(value).removeprefix("PHASE_"))


# Looked up on every response; the enum wrapper's by-name lookup costs more.
_TO_PROTO = {phase: pb.Phase.Value(f"PHASE_{phase.value}") for phase in Phase}


FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.CANCELED, Phase.FAILED})
# The phases not final: they count against an owner's cap on active
# trainings, and a full resync queues the trainings in them.
ACTIVE_PHASES = (Phase.PENDING, Phase.QUEUED, Phase.RUNNING, Phase.SUSPENDED)
