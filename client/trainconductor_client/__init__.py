"""Train Conductor's Python client: `Client`, its errors, and spec loading."""

from trainconductor_client.client import FINAL_PHASES, Client
from trainconductor_client.errors import (
    FieldViolation,
    HistoryTrimmed,
    InvalidArgument,
    NotFound,
    TrainConductorError,
    Unavailable,
)
from trainconductor_client.spec import SpecError, load_spec, spec_from_dict

__all__ = [
    "FINAL_PHASES",
    "Client",
    "FieldViolation",
    "HistoryTrimmed",
    "InvalidArgument",
    "NotFound",
    "SpecError",
    "TrainConductorError",
    "Unavailable",
    "load_spec",
    "spec_from_dict",
]
