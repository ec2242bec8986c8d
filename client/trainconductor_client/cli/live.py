"""`tcctl watch`: a live view of one training, or of all.

On a terminal: one line per phase as it happens, and below them a status
line with a spinner and the elapsed time, redrawn as time passes. Elsewhere
(a pipe, a log): one plain line per event. All trainings: one line per
event, naming its training.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import click
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_client.cli.output import attempt_said, coloured_phase, phase_name, standing
from trainconductor_client.client import FINAL_PHASES
from trainconductor_client.progress import Progress, progress_line

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# Progress events come every few seconds while a trainer reports: on a
# terminal they move the bar of the status line rather than add lines.
PROGRESS_REASON = "Progress"


def _said(event: pb.TrainingEvent, queue: str) -> str:
    if event.HasField("progress"):
        return progress_line(event.progress)
    said = standing(event.phase, event.reason, event.message, queue, event.queue_position)
    return attempt_said(event.attempt, said)


def follow(
    events: Iterator[pb.TrainingEvent], *, tty: bool, started: float, queue: str = ""
) -> pb.TrainingEvent | None:
    """Shows the events (of a training in `queue`, if any); returns the last one."""
    if not tty:
        last = None
        for event in events:
            when = event.time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")  # UTC, said so
            said = _said(event, queue)
            click.echo(f"{when}  {phase_name(event.phase):<9}  {event.reason}  {said}")
            last = event
        return last
    return _follow_tty(events, started, queue)  # the training's queue


def follow_all(events: Iterator[pb.TrainingEvent], *, tty: bool) -> None:
    for event in events:
        when = event.time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")  # UTC, said so
        phase = coloured_phase(event.phase, tty, width=9)
        said = standing(event.phase, event.reason, event.message, "", event.queue_position)
        if event.queue_position and said == event.message:
            said = f"#{event.queue_position} in queue: {said}"
        said = attempt_said(event.attempt, said)
        click.echo(f"{when}  {event.training_id}  {phase}  {event.reason}  {said}")


def _follow_tty(
    events: Iterator[pb.TrainingEvent], started: float, in_queue: str
) -> pb.TrainingEvent | None:
    inbox: queue.Queue[pb.TrainingEvent | BaseException | None] = queue.Queue()

    def pump() -> None:
        try:
            for event in events:
                inbox.put(event)
            inbox.put(None)
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            inbox.put(err)

    threading.Thread(target=pump, daemon=True).start()
    last: pb.TrainingEvent | None = None
    progress: Progress | None = None
    tick = 0
    while True:
        try:
            item = inbox.get(timeout=0.1)
        except queue.Empty:
            item = ...  # type: ignore[assignment]
        if item is None:
            click.echo("\r\033[K", nl=False)
            return last
        if isinstance(item, BaseException):
            click.echo("\r\033[K", nl=False)
            raise item
        if isinstance(item, pb.TrainingEvent) and item.reason == PROGRESS_REASON:
            progress = item.progress
            item = ...  # type: ignore[assignment]  # only the status line changes
        if isinstance(item, pb.TrainingEvent):
            click.echo("\r\033[K", nl=False)
            if item.HasField("progress"):
                progress = item.progress
            seen = (item.phase, item.reason, item.message, item.queue_position)
            if last is None or seen != (
                last.phase,
                last.reason,
                last.message,
                last.queue_position,
            ):
                elapsed = _elapsed(time.time() - started)
                # Padded before colouring, so the escape codes do not count.
                phase = coloured_phase(item.phase, True, width=9)
                click.echo(f"{elapsed}  {phase}  {item.reason}  {_said(item, in_queue)}")
            last = item
            if item.phase in FINAL_PHASES:
                return last
        tick += 1
        if last is not None:
            spin = SPINNER[tick % len(SPINNER)]
            phase = coloured_phase(last.phase, True)
            status = f"{spin} {phase} {last.reason}  {_elapsed(time.time() - started)}"
            if progress is not None and last.phase == pb.PHASE_RUNNING:
                status += f"  {progress_line(progress)}"  # its ETA counts down
            click.echo(f"\r\033[K{status}", nl=False)
