"""A training's progress, for the people who follow it and the trainers
that report it.

`progress_line(training.progress)` reads "[######··············] 31.0%  step
310/1000  ETA 12m  loss 0.5312": the bar `tcctl get` and `tcctl watch` show.
`remaining_seconds` is the ETA as of now (the API's estimate is as of the
report).

`Reporter` is how a trainer reports, from inside its training pod: it reads
where to (TC_PROGRESS_ADDRESS), with which token (TC_PROGRESS_TOKEN_FILE, a
projected token the kubelet renews; read again when it changes) and for
which training (TC_TRAINING_ID), all set by the controller. Outside a
training pod `Reporter.from_environment()` is None, and there is nothing to
do. A report never raises and never blocks training for long: one that
fails is logged and dropped, the next one supersedes it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc
from trainconductor.v1 import progress_pb2
from trainconductor.v1 import progress_service_pb2 as ppb
from trainconductor.v1 import progress_service_pb2_grpc as ppb_grpc

log = logging.getLogger(__name__)

ADDRESS_ENV = "TC_PROGRESS_ADDRESS"
TOKEN_FILE_ENV = "TC_PROGRESS_TOKEN_FILE"
TRAINING_ID_ENV = "TC_TRAINING_ID"
# The API takes at most 32 named metrics, named so.
MAX_METRICS = 32

Progress = progress_pb2.Progress


def remaining_seconds(progress: Progress, now: float | None = None) -> float | None:
    """Seconds left as of `now`: the API's estimate at the report, less the
    time since; None when not known."""
    if not progress.HasField("eta"):
        return None
    since = (now if now is not None else time.time()) - progress.report_time.ToSeconds()
    return max(0.0, progress.eta.ToTimedelta().total_seconds() - max(since, 0.0))


def duration(seconds: float) -> str:
    """ "2h05m", "12m", "45s"."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def bar(percent: float, width: int = 20) -> str:
    filled = min(width, max(0, round(percent / 100 * width)))
    return "[" + "#" * filled + "·" * (width - filled) + "]"


def progress_line(progress: Progress, now: float | None = None, width: int = 20) -> str:
    """The bar, percent, steps, ETA and loss of a report, as people read
    them. A NaN loss reads "loss nan": it is what the trainer saw."""
    parts = [f"{bar(progress.percent, width)} {progress.percent:5.1f}%"]
    if progress.total_steps:
        parts.append(f"step {progress.step}/{progress.total_steps}")
    elif progress.step:
        parts.append(f"step {progress.step}")
    left = remaining_seconds(progress, now)
    if left is not None:
        parts.append(f"ETA {duration(left)}")
    if progress.HasField("loss"):
        parts.append(f"loss {progress.loss:.4g}")
    return "  ".join(parts)


def progress_cell(progress: Progress, now: float | None = None) -> str:
    """The short form for a table: "31% ETA 12m"."""
    left = remaining_seconds(progress, now)
    return f"{progress.percent:.0f}%" + (f" ETA {duration(left)}" if left is not None else "")


def metrics_line(progress: Progress) -> str:
    """Epoch, learning rate, throughput and the named metrics, by name."""
    values: list[tuple[str, float]] = []
    if progress.epoch:
        values.append(("epoch", progress.epoch))
    for name in ("learning_rate", "samples_per_second", "tokens_per_second"):
        if progress.HasField(name):
            values.append((name, getattr(progress, name)))
    values.extend(sorted(progress.metrics.items()))
    return ", ".join(f"{name} {value:.4g}" for name, value in values)


class Reporter:
    """Reports a training's progress to the API, from its pod."""

    def __init__(
        self,
        address: str,
        *,
        token_file: str | Path | None,
        training_id: str = "",
        timeout: float = 5.0,
        min_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`min_interval_seconds`: reports closer together are dropped here
        (the API keeps the latest only, and would limit them anyway)."""
        self._training_id = training_id
        self._token_file = Path(token_file) if token_file else None
        self._token = ""
        self._stamp: tuple[int, int] | None = None
        self._timeout = timeout
        self._min_interval = min_interval_seconds
        self._clock = clock
        self._last: float | None = None
        self._channel = grpc.insecure_channel(address)
        self._stub = ppb_grpc.ProgressServiceStub(self._channel)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Reporter | None:
        """The reporter of this training pod; None outside one."""
        env = os.environ if environ is None else environ
        address = env.get(ADDRESS_ENV, "")
        if not address:
            return None
        return cls(
            address,
            token_file=env.get(TOKEN_FILE_ENV) or None,
            training_id=env.get(TRAINING_ID_ENV, ""),
        )

    def close(self) -> None:
        self._channel.close()

    def report(
        self,
        *,
        step: int,
        total_steps: int = 0,
        epoch: float = 0.0,
        loss: float | None = None,
        learning_rate: float | None = None,
        samples_per_second: float | None = None,
        tokens_per_second: float | None = None,
        metrics: Mapping[str, float] | None = None,
        force: bool = False,
    ) -> Progress | None:
        """Sends a report; returns it as the API recorded it (with percent
        and ETA), or None when it was dropped: too soon after the last one
        (unless `force`), or refused, or the API out of reach."""
        if not force:  # the first and the last report of a run always go
            now = self._clock()
            if self._last is not None and now - self._last < self._min_interval:
                return None
            self._last = now
        progress = Progress(
            step=max(step, 0),
            total_steps=max(total_steps, 0),
            epoch=epoch if math.isfinite(epoch) and epoch > 0 else 0.0,
            loss=loss,
            learning_rate=_finite(learning_rate),
            samples_per_second=_finite(samples_per_second),
            tokens_per_second=_finite(tokens_per_second),
            metrics=_reportable(metrics or {}),
        )
        request = ppb.ReportProgressRequest(training_id=self._training_id, progress=progress)
        try:
            response: ppb.ReportProgressResponse = self._stub.ReportProgress(
                request, timeout=self._timeout, metadata=self._metadata()
            )
        except (grpc.RpcError, OSError) as err:
            code = err.code() if isinstance(err, grpc.RpcError) else None
            log.warning("progress report dropped", extra={"code": str(code), "step": step})
            return None
        return response.progress

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        if self._token_file is None:
            return ()
        st = self._token_file.stat()
        if (st.st_mtime_ns, st.st_ino) != self._stamp:  # renewed by the kubelet
            self._token = self._token_file.read_text().strip()
            self._stamp = (st.st_mtime_ns, st.st_ino)
        return (("authorization", f"Bearer {self._token}"),)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _reportable(metrics: Mapping[str, float]) -> dict[str, float]:
    """The metrics the API takes: finite numbers under valid names, at most
    MAX_METRICS (by name), so that one odd value does not lose the report."""
    kept = {
        name: float(value)
        for name, value in sorted(metrics.items())
        if _is_metric_name(name) and isinstance(value, int | float) and math.isfinite(value)
    }
    return dict(list(kept.items())[:MAX_METRICS])


def _is_metric_name(name: str) -> bool:
    return (
        0 < len(name) <= 64
        and (name[0].isascii() and (name[0].isalpha() or name[0] == "_"))
        and all(c.isascii() and (c.isalnum() or c in "_./-") for c in name)
    )
