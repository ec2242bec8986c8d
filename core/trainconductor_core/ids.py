"""Training ids: time-ordered, lowercase hex, valid in Kubernetes names.

Twelve hex digits of milliseconds since the epoch, then eight random ones:
ids sort by creation time, which the listing indexes rely on, and the Job
name derived from an id is a valid DNS-1123 label.
"""

from __future__ import annotations

import re
import secrets

_ID = re.compile(r"^[0-9a-f]{20}$")


def new_training_id(now_ms: int) -> str:
    return f"{now_ms:012x}{secrets.token_hex(4)}"


def created_ms(training_id: str) -> int:
    """When the training with this id was recorded (ms since the epoch)."""
    return int(training_id[:12], 16)


def is_training_id(value: str) -> bool:
    return bool(_ID.match(value))
