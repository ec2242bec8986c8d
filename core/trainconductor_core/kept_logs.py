"""The end of each rank's log, kept with a finished training so that its
log outlives its pods: the controller keeps it when the training ends, the
API serves it once the pods are gone, retention removes it with the rest."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class KeptLog:
    rank: int
    # Its attempt (from 1) and pod: the last the rank ran.
    attempt: int
    pod: str
    # Lines as Kubernetes sends them with timestamps (`<RFC 3339 time>
    # <text>`), each ending in a line break.
    log: str
    # The log was longer: its start is not kept.
    earlier_dropped: bool = False

    def encode(self) -> str:
        return json.dumps(
            {
                "attempt": self.attempt,
                "pod": self.pod,
                "log": self.log,
                "earlier_dropped": self.earlier_dropped,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, rank: int, value: str) -> KeptLog:
        fields = json.loads(value)
        return cls(
            rank=rank,
            attempt=int(fields.get("attempt", 0)),
            pod=str(fields.get("pod", "")),
            log=str(fields.get("log", "")),
            earlier_dropped=bool(fields.get("earlier_dropped", False)),
        )


def last_lines(log: bytes, limit: int) -> tuple[bytes, bool]:
    """The whole lines at the end of `log` that fit in `limit` bytes, and
    whether anything before them was left out. A last line longer than the
    limit keeps its end."""
    if len(log) <= limit:
        return log, False
    cut = len(log) - limit
    kept = log[cut:]
    if log[cut - 1 : cut] == b"\n":
        return kept, True  # cut between two lines
    start = kept.find(b"\n")
    if 0 <= start < len(kept) - 1:
        kept = kept[start + 1 :]
    return kept, True
