"""A pod's log, as Kubernetes sends it with timestamps (`<RFC 3339 time>
<text>` per line), cut into lines of bounded size. Pure: bytes in, lines out.

A line longer than the limit keeps its first `max_line_bytes` and is marked
truncated; the rest of it is read and dropped, never held, so one endless
line costs no more memory than a short one.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

# Kubernetes writes nanoseconds; Python's datetime keeps microseconds, so
# the fraction is carried apart.
_FRACTION_DIGITS = 9


@dataclass(frozen=True, order=True)
class LogTime:
    """When a line was written: seconds since the epoch and nanoseconds."""

    seconds: int
    nanos: int

    def rfc3339(self) -> str:
        """Whole seconds, as Kubernetes takes `sinceTime`."""
        when = datetime.datetime.fromtimestamp(self.seconds, datetime.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Line:
    time: LogTime | None
    text: str
    truncated: bool = False


def parse_time(stamp: bytes) -> LogTime | None:
    """`2026-01-02T03:04:05.123456789Z` (or without a fraction); None when it
    is not such a time."""
    try:
        text = stamp.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text.endswith("Z"):
        return None
    whole, _, fraction = text[:-1].partition(".")
    if fraction and not fraction.isdigit():
        return None
    seconds = _epoch_seconds(whole)
    if seconds is None:
        return None
    nanos = int((fraction + "0" * _FRACTION_DIGITS)[:_FRACTION_DIGITS]) if fraction else 0
    return LogTime(seconds, nanos)


@functools.lru_cache(maxsize=256)
def _epoch_seconds(whole: str) -> int | None:
    """`2026-01-02T03:04:05` as seconds since the epoch. A log's lines come
    many to a second, and each of them is parsed: a second's is worked out
    once (docs/performance.md, "What a line cost")."""
    # fromisoformat also takes what Kubernetes never writes (a space for the
    # T, no seconds, week dates): the shape is checked first.
    if len(whole) != 19 or whole[4] != "-" or whole[7] != "-" or whole[10] != "T":
        return None
    try:
        when = datetime.datetime.fromisoformat(whole)
    except ValueError:
        return None
    return int(when.replace(tzinfo=datetime.UTC).timestamp())


def line_of(raw: bytes, truncated: bool) -> Line:
    """One line as sent with timestamps, its line break removed."""
    stamp, space, text = raw.partition(b" ")
    when = parse_time(stamp) if space else None
    if when is None:  # no timestamp: the whole of it is the text
        return Line(None, raw.decode("utf-8", "replace"), truncated)
    return Line(when, text.decode("utf-8", "replace"), truncated)


class LineSplitter:
    """Cuts chunks of a log into lines of at most `max_line_bytes` (the
    timestamp not counted)."""

    _STAMP_BYTES = 40  # room for the timestamp and its space

    def __init__(self, max_line_bytes: int) -> None:
        self._limit = max_line_bytes + self._STAMP_BYTES
        self._partial = bytearray()
        self._cut = False  # the partial line was cut: drop the rest of it

    def feed(self, chunk: bytes) -> list[Line]:
        lines: list[Line] = []
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self._cut:
                room = self._limit - len(self._partial)
                if len(piece) > room:
                    piece = piece[:room]
                    self._cut = True
                self._partial += piece
            if end < 0:
                break
            lines.append(line_of(bytes(self._partial), self._cut))
            self._partial.clear()
            self._cut = False
            start = end + 1
        return lines

    def flush(self) -> list[Line]:
        """The last line when the log ended without a line break."""
        if not self._partial and not self._cut:
            return []
        line = line_of(bytes(self._partial), self._cut)
        self._partial.clear()
        self._cut = False
        return [line]


class SeenLines:
    """Where a read of a log got to, so that a read again from its last
    whole second (all `sinceTime` takes) skips the lines already sent."""

    def __init__(self, after: LogTime | None = None) -> None:
        """`after`: lines up to this time count as sent (a resumed follow's)."""
        self.last: LogTime | None = after
        # Lines sent that were written at `last`: all of them, for `after`.
        self._sent_at_last = 0 if after is None else 1 << 62
        self._read_at_last = 0  # of those, how many this read has seen

    def is_new(self, line: Line) -> bool:
        """Whether to send the line; counts it as sent when so."""
        if line.time is None:
            return True  # nothing to tell it by
        if self.last is None or line.time > self.last:
            self.last, self._sent_at_last, self._read_at_last = line.time, 1, 1
            return True
        if line.time < self.last:
            return False
        # Written in the same nanosecond as the last one sent: new once past
        # those already sent.
        self._read_at_last += 1
        if self._read_at_last > self._sent_at_last:
            self._sent_at_last += 1
            return True
        return False

    def rewind(self) -> None:
        """A new read starts: it sends again what was sent from `last` on."""
        self._read_at_last = 0
