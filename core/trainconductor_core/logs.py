"""JSON logs: one object per line, with the training and trace ids in scope."""

from __future__ import annotations

import contextvars
import logging
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

training_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("training_id", default="")


class _ContextFilter(logging.Filter):
    """Adds the ids of the current training and trace to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        training_id = training_id_var.get()
        if training_id and not hasattr(record, "training_id"):
            record.training_id = training_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return True


def configure_logging(level: str, service: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Kubernetes client's elector logs every renewal at INFO.
    logging.getLogger("leaderelection").setLevel(max(logging.WARNING, root.level))
