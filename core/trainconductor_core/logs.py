"""JSON logs: one object per line, with the training and trace ids in scope.

The API writes a line for every call, so a line must cost little
(docs/performance.md): the formatter here is one `orjson.dumps`, the
record skips what no line shows (caller, thread and process), through the
switches the logging HOWTO names for this, and lines below WARNING are
written a few at a time rather than one write each.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import sys
import threading
import time
import weakref
from typing import Any, TextIO, cast

import orjson
from opentelemetry import trace

training_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("training_id", default="")

# What every LogRecord carries; anything else on a record came from `extra=`.
RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonLines(logging.Formatter):
    """time (ISO 8601, UTC), level, logger, message, service, then the
    record's extra fields, then the exception, if any."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service
        # The time's text up to its second, reused while the second lasts:
        # the API writes hundreds of lines a second. Only one thread at a
        # time updates it: a handler formats under its lock.
        self._second = -1
        self._second_text = ""

    def _time(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in RECORD_ATTRIBUTES}
        if record.exc_info:
            fields["exc_info"] = self.formatException(record.exc_info)
        return self.line(
            record.created, record.msecs, record.levelname, record.name, record.getMessage(), fields
        )

    def line(
        self,
        created: float,
        msecs: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, object],
    ) -> str:
        """The line of a record made at `created` (seconds since the epoch,
        `msecs` its milliseconds) with `fields` after the fixed ones."""
        line: dict[str, object] = {
            "time": self._time(created, msecs),
            "level": level,
            "logger": logger,
            "message": message,
            "service": self._service,
        }
        line.update(fields)
        try:
            return orjson.dumps(line, default=str).decode()
        except orjson.JSONEncodeError:  # an int beyond 64 bits, say: never lose the line
            return json.dumps(line, default=str)


class _FieldsFilter(logging.Filter):
    """A filter that only adds fields, to a record or to a direct line's."""

    def add_to(self, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        self.add_to(record.__dict__)
        return True


class _TrainingFilter(_FieldsFilter):
    """Adds the id of the training in scope to every record."""

    def add_to(self, fields: dict[str, Any]) -> None:
        training_id = training_id_var.get()
        if training_id and "training_id" not in fields:
            fields["training_id"] = training_id


class _TraceFilter(_FieldsFilter):
    """Adds the ids of the current span; only installed when tracing is on,
    since there are no spans otherwise."""

    def add_to(self, fields: dict[str, Any]) -> None:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields["trace_id"] = format(span.trace_id, "032x")
            fields["span_id"] = format(span.span_id, "016x")


# How long a line below WARNING may wait to be written, as nginx's buffered
# access log waits (its `flush=`): a write for each line costs the API a
# share of every call's CPU (docs/performance.md).
FLUSH_SECONDS = 0.2
_PENDING_MAX = 256  # lines held at most; a burst past it is written at once


class BufferedLines(logging.StreamHandler[TextIO]):
    """Lines below WARNING wait at most FLUSH_SECONDS (a thread writes what
    waits); a WARNING or worse is written at once, after the lines before
    it. Whatever waits is written at exit, as logging flushes its handlers
    then; a process killed outright loses at most FLUSH_SECONDS of lines."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        _flusher().add(self)

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's lock (Handler.handle).
        try:
            self._add(self.format(record), record.levelno)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own rule: report it, never raise
            self.handleError(record)

    def write_line(self, line: str, level: int) -> None:
        """A line formatted elsewhere (`DirectLines`), written as emit writes."""
        self.acquire()
        try:
            self._add(line, level)
        finally:
            self.release()

    def _add(self, line: str, level: int) -> None:
        self._pending.append(line + self.terminator)
        if level >= logging.WARNING or len(self._pending) >= _PENDING_MAX:
            self._write()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()

    def _write(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.stream.write(text)
        super().flush()


class _Flusher:
    """One thread that writes every BufferedLines' waiting lines."""

    def __init__(self) -> None:
        self._handlers: weakref.WeakSet[BufferedLines] = weakref.WeakSet()
        threading.Thread(target=self._run, name="log-flush", daemon=True).start()

    def add(self, handler: BufferedLines) -> None:
        self._handlers.add(handler)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            for handler in list(self._handlers):
                handler.flush()


@functools.cache
def _flusher() -> _Flusher:
    return _Flusher()


class DirectLines:
    """The lines of one logger, written to the handler `configure_logging`
    installed without making a LogRecord: the API writes one for every
    call, and the record and its trip through the loggers and the handler
    are a share of that call's CPU (docs/performance.md).
    The line is the one logging would write. When logging is set up
    otherwise (other handlers, a test's capture), it goes through logging."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def log(self, level: int, message: str, fields: dict[str, Any]) -> None:
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        handler = _installed
        if handler is None or not _only_handler(logger, handler, level):
            logger.log(level, message, extra=fields)
            return
        for added in handler.filters:
            cast(_FieldsFilter, added).add_to(fields)
        created = time.time()
        line = cast(JsonLines, handler.formatter).line(
            created,
            (created - int(created)) * 1000,
            logging.getLevelName(level),
            logger.name,
            message,
            fields,
        )
        handler.write_line(line, level)


def _only_handler(logger: logging.Logger, handler: BufferedLines, level: int) -> bool:
    """Whether a record of `logger` at `level` would reach `handler` alone,
    through nothing but the filters `configure_logging` gave it."""
    if not isinstance(handler.formatter, JsonLines) or not all(
        isinstance(added, _FieldsFilter) for added in handler.filters
    ):
        return False
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return False
        if current.handlers:
            return current.handlers == [handler] and level >= handler.level
        if not current.propagate:
            return False
        current = current.parent
    return False


_installed: BufferedLines | None = None  # the handler configure_logging set up


def configure_logging(level: str, service: str, *, tracing: bool = False) -> None:
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no caller lookup: no line shows it
    handler = BufferedLines(sys.stdout)
    handler.setFormatter(JsonLines(service))
    handler.addFilter(_TrainingFilter())
    if tracing:
        handler.addFilter(_TraceFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    global _installed
    _installed = handler
    root.setLevel(level)
    # The Kubernetes client's elector logs every renewal at INFO.
    logging.getLogger("leaderelection").setLevel(max(logging.WARNING, root.level))
