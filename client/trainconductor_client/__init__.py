"""Train Conductor's Python client: `Client`, its errors, spec loading, and
a training's progress (read as people read it; reported from its pod)."""

from trainconductor_client.client import FINAL_PHASES, Client
from trainconductor_client.errors import (
    FieldViolation,
    HistoryTrimmed,
    InvalidArgument,
    NotFound,
    TrainConductorError,
    Unavailable,
)
from trainconductor_client.progress import Reporter, progress_line, remaining_seconds
from trainconductor_client.spec import SpecError, load_spec, spec_from_dict

__all__ = [
    "FINAL_PHASES",
    "Client",
    "FieldViolation",
    "HistoryTrimmed",
    "InvalidArgument",
    "NotFound",
    "Reporter",
    "SpecError",
    "TrainConductorError",
    "Unavailable",
    "load_spec",
    "progress_line",
    "remaining_seconds",
    "spec_from_dict",
]
