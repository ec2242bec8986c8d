"""How trainings are printed: table, json, yaml or name; colours on a TTY only."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from typing import Any

import click
import yaml
from google.protobuf import json_format
from trainconductor.v1 import training_service_pb2 as pb

FORMATS = ("table", "json", "yaml", "name")

_COLOURS = {
    "PENDING": "white",
    "QUEUED": "yellow",
    "RUNNING": "cyan",
    "SUSPENDED": "magenta",
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELED": "bright_black",
}


def phase_name(phase: int) -> str:
    return pb.Phase.Name(phase).removeprefix("PHASE_")  # type: ignore[arg-type]


def coloured_phase(phase: int, colour: bool, width: int = 0) -> str:
    name = phase_name(phase)
    padded = name.ljust(width)
    return click.style(padded, fg=_COLOURS.get(name)) if colour else padded


def as_dict(training: pb.Training) -> dict[str, Any]:
    return json_format.MessageToDict(training, preserving_proto_field_name=True)


def age(training: pb.Training, now: float | None = None) -> str:
    seconds = int((now or time.time()) - training.create_time.ToSeconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def render(
    trainings: Sequence[pb.Training], fmt: str, *, colour: bool, single: bool = False
) -> str:
    if fmt == "name":
        return "\n".join(t.id for t in trainings)
    if fmt in ("json", "yaml"):
        data: Any = as_dict(trainings[0]) if single else [as_dict(t) for t in trainings]
        if fmt == "json":
            return json.dumps(data, indent=2, sort_keys=True)
        return yaml.safe_dump(data, sort_keys=True).rstrip()
    return table(trainings, colour=colour)


def table(trainings: Sequence[pb.Training], *, colour: bool) -> str:
    headers = ["ID", "MODEL", "PHASE", "REASON", "OWNER", "AGE", "MESSAGE"]
    rows = [
        [t.id, t.spec.model_name, phase_name(t.phase), t.reason, t.owner, age(t), t.message]
        for t in trainings
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    # The message takes what the terminal has left, and is cut to fit.
    used = sum(widths[:-1]) + 2 * (len(headers) - 1)
    widths[-1] = max(10, shutil.get_terminal_size((120, 24)).columns - used)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = [
            cell[:w].ljust(w) if i < 6 else _cut(cell, w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        if colour:
            cells[2] = click.style(cells[2], fg=_COLOURS.get(row[2]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
