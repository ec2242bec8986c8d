"""Training ids: time-ordered, lowercase hex, valid in Kubernetes names.

Twelve hex digits of milliseconds since the epoch, then eight more: ids sort
by creation time, which the listing indexes rely on ("newest first"), and the
Job name derived from an id is a valid DNS-1123 label.

Within one process ids only rise, as ULIDs' monotonic mode does: a training
made in the same millisecond as the one before it (or after the clock stepped
back) takes the last id's time and a larger suffix, so trainings created one
after the other list in the order they were made. Across processes the
suffix's random start keeps ids apart; the suffix rises by a random step, not
by one, so two processes in the same millisecond do not walk onto each
other's ids.
"""

from __future__ import annotations

import re
import threading

from trainconductor_core.random_bytes import RANDOM

_ID = re.compile(r"^[0-9a-f]{20}$")
_SUFFIX_LIMIT = 1 << 32
# A fresh millisecond's suffix starts in the lower half, so that a burst of
# thousands of ids in one millisecond still fits before it would overflow.
_START_LIMIT = 1 << 31
_STEP_LIMIT = 1 << 16


class TrainingIds:
    """Makes the ids of one process's trainings, rising within the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_suffix = 0

    def new(self, now_ms: int) -> str:
        with self._lock:
            if now_ms > self._last_ms:
                ms, suffix = now_ms, RANDOM.below(_START_LIMIT)
            else:
                ms, suffix = self._last_ms, self._last_suffix + 1 + RANDOM.below(_STEP_LIMIT)
                if suffix >= _SUFFIX_LIMIT:  # borrow the next millisecond
                    ms, suffix = ms + 1, RANDOM.below(_START_LIMIT)
            self._last_ms, self._last_suffix = ms, suffix
        return f"{ms:012x}{suffix:08x}"


def created_ms(training_id: str) -> int:
    """When the training with this id was recorded (ms since the epoch)."""
    return int(training_id[:12], 16)


def is_training_id(value: str) -> bool:
    return bool(_ID.match(value))
