"""`tcctl logs`: a training's log lines on standard output, and on standard
error where they come from when that changes (a new attempt, the end of the
log kept once the pods were gone)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import click
from trainconductor.v1 import training_service_pb2 as pb

_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """`90s`, `10m`, `1h30m`, `2d` (or plain seconds) as seconds; ValueError
    otherwise."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m, 1h30m or 2d")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def print_logs(batches: Iterable[pb.StreamTrainingLogsResponse], *, timestamps: bool) -> int:
    """Prints the lines; returns how many."""
    count = 0
    source: tuple[int, str, int] | None = None
    for batch in batches:
        now = (batch.attempt, batch.pod, batch.source)
        if now != source:
            if source is not None or batch.attempt > 1 or batch.source == pb.LOG_SOURCE_KEPT:
                click.echo(_whence(batch), err=True)
            source = now
        if batch.earlier_lines_dropped:
            click.echo("tcctl: (earlier lines of this log were not kept)", err=True)
        for line in batch.lines:
            text = line.text + (" [line cut]" if line.truncated else "")
            if timestamps and line.HasField("time"):
                text = f"{line.time.ToJsonString()} {text}"
            click.echo(text)
            count += 1
    return count


def _whence(batch: pb.StreamTrainingLogsResponse) -> str:
    where = f"rank {batch.rank}, attempt {batch.attempt}, pod {batch.pod}"
    if batch.source == pb.LOG_SOURCE_KEPT:
        return f"tcctl: --- {where}: the end of its log, kept when the training finished ---"
    return f"tcctl: --- {where} ---"
