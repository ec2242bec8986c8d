"""How trainings are printed: table, json, yaml or name; colours on a TTY only."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import click
import yaml
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_client.client import FINAL_PHASES
from trainconductor_client.progress import metrics_line, progress_cell, progress_line

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
    return _painted(phase_name(phase).ljust(width), phase, colour)


def _painted(text: str, phase: int, colour: bool) -> str:
    """`text` in the colour of `phase`, on a terminal."""
    return click.style(text, fg=_COLOURS.get(phase_name(phase))) if colour else text


def standing(phase: int, reason: str, message: str, queue: str, position: int) -> str:
    """What a person reads of where a training stands: a wait for quota
    names its queue and place, then Kueue's words."""
    if phase == pb.PHASE_QUEUED and reason == "WaitingForQuota" and queue:
        place = f", #{position} in queue" if position else ""
        return f"waiting for quota in {queue}{place}: {message}"
    return message


def training_standing(training: pb.Training) -> str:
    return standing(
        training.phase, training.reason, training.message, training.queue, training.queue_position
    )


def as_dict(training: pb.Training) -> dict[str, Any]:
    return json_format.MessageToDict(training, preserving_proto_field_name=True)


def age(training: pb.Training, now: float | None = None) -> str:
    seconds = int((now or time.time()) - training.create_time.ToSeconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def render(
    trainings: Sequence[pb.Training],
    fmt: str,
    *,
    tty: bool,
    single: bool = False,
    detail: bool = False,
) -> str:
    """`tty`: colours, and the table's messages cut to the terminal's width
    (in a pipe or a log they stay whole). `detail`: one training, every
    field on a line of its own."""
    if fmt == "name":
        return "\n".join(t.id for t in trainings)
    if fmt in ("json", "yaml"):
        data: Any = as_dict(trainings[0]) if single else [as_dict(t) for t in trainings]
        if fmt == "json":
            return json.dumps(data, indent=2, sort_keys=True)
        return yaml.safe_dump(data, sort_keys=True).rstrip()
    if detail:
        return details(trainings[0], colour=tty)
    return table(trainings, colour=tty, fit=tty)


def _phase_text(training: pb.Training) -> str:
    """The phase, marked while a cancel is on its way."""
    name = phase_name(training.phase)
    finished = training.phase in FINAL_PHASES
    return f"{name} (canceling)" if training.cancel_requested and not finished else name


def table(trainings: Sequence[pb.Training], *, colour: bool, fit: bool = True) -> str:
    headers = ["ID", "MODEL", "PHASE", "REASON", "OWNER", "AGE", "MESSAGE"]
    rows = [
        [t.id, t.spec.model_name, _phase_text(t), t.reason, t.owner, age(t), training_standing(t)]
        for t in trainings
    ]
    if any(t.queue for t in trainings):  # a column only where queues are used
        headers.insert(3, "QUEUE")
        for row, t in zip(rows, trainings, strict=True):
            row.insert(3, t.queue)
    if any(t.HasField("progress") for t in trainings):  # where trainers report
        headers.insert(len(headers) - 1, "PROGRESS")
        for row, t in zip(rows, trainings, strict=True):
            row.insert(len(row) - 1, _progress_cell(t))
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    if fit:  # the message takes what the terminal has left, and is cut to fit
        used = sum(widths[:-1]) + 2 * (len(headers) - 1)
        widths[-1] = max(10, shutil.get_terminal_size((120, 24)).columns - used)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for training, row in zip(trainings, rows, strict=True):
        last = len(headers) - 1
        cells = [
            cell[:w].ljust(w) if i < last else _cut(cell, w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        cells[2] = _painted(cells[2], training.phase, colour)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _progress_cell(training: pb.Training) -> str:
    if not training.HasField("progress"):
        return ""
    cell = progress_cell(training.progress)
    return f"{cell} stalled" if training.stalled else cell


def details(training: pb.Training, *, colour: bool) -> str:
    """`tcctl get ID`: what a person asks of one training, why it is where it
    is first, and nothing cut."""
    fields = [
        ("ID", training.id),
        ("Model", training.spec.model_name),
        ("Phase", _painted(_phase_text(training), training.phase, colour)),
        ("Reason", training.reason),
        ("Message", training_standing(training)),
        (
            "Queue",
            training.queue + (f" (priority {training.priority})" if training.priority else ""),
        ),
        ("Place", f"#{training.queue_position} in queue" if training.queue_position else ""),
        ("Held", "yes; `tcctl release` queues it again" if training.held else ""),
        ("Owner", training.owner),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(training.spec.labels.items()))),
        ("Created", f"{_when(training.create_time)} ({age(training)} ago)"),
        ("Started", _when(training.start_time)),
        ("Finished", _when(training.finish_time)),
        ("Nodes", _nodes(training)),
        ("Job", training.job_name),
        ("Attempts", _attempts(training) if training.job_name else ""),
        *_progress_fields(training),
    ]
    width = max(len(name) for name, _ in fields) + 2
    lines = [f"{name + ':':<{width}}{value}" for name, value in fields if value]
    if training.conditions:
        lines.append("Conditions:")
        kinds = max(len(c.type) for c in training.conditions) + 2
        for c in training.conditions:
            said = " ".join(filter(None, (c.status, c.reason)))
            lines.append(
                f"  {c.type:<{kinds}}{said}: {c.message}"
                if c.message
                else f"  {c.type:<{kinds}}{said}"
            )
    return "\n".join(line.rstrip() for line in lines)


def _nodes(training: pb.Training) -> str:
    """ "4, 8 GPUs each" for a multi-node training; nothing for one node."""
    resources = training.spec.resources
    if resources.nodes <= 1:
        return ""
    return (
        f"{resources.nodes}, {resources.gpus} GPUs each" if resources.gpus else str(resources.nodes)
    )


def _attempts(training: pb.Training) -> str:
    """ "2 (1 of 3 retries spent)": the attempts made and the retry budget."""
    budget = training.max_retries
    if not budget and not training.retries:
        return f"{training.attempts} (no retries allowed)"
    return f"{training.attempts} ({training.retries} of {budget} retries spent)"


def attempt_said(attempt: int, said: str) -> str:
    """An event's words, marked with its attempt once there is more than one."""
    if attempt > 1 and not said.startswith("attempt "):
        return f"attempt {attempt}: {said}"
    return said


def _progress_fields(training: pb.Training) -> list[tuple[str, str]]:
    """The trainer's latest report: the bar, its other figures, and when
    (with the stall, if its reports stopped)."""
    if not training.HasField("progress"):
        return []
    progress = training.progress
    reported = f"{_when(progress.report_time)} ({_ago(progress.report_time)} ago)"
    if training.stalled:
        reported += "; stalled: no report since"
    return [
        ("Progress", progress_line(progress)),
        ("Metrics", metrics_line(progress)),
        ("Reported", reported),
    ]


def _ago(stamp: Timestamp, now: float | None = None) -> str:
    seconds = int((now or time.time()) - stamp.ToSeconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _when(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
