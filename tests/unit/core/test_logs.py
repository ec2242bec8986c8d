"""The log line format operators' tools parse: one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from trainconductor_core.logs import configure_logging, training_id_var


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "api")
    yield out
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_a_line_is_one_json_object_with_the_fields_and_the_training_in_scope(
    lines: io.StringIO,
) -> None:
    token = training_id_var.set("0123456789abcdef0123")
    try:
        logging.getLogger("trainconductor_api.access").info(
            "rpc", extra={"grpc_code": "OK", "duration_ms": 1.5}
        )
    finally:
        training_id_var.reset(token)
    (line,) = lines.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "trainconductor_api.access"
    assert entry["message"] == "rpc"
    assert entry["service"] == "api"
    assert entry["grpc_code"] == "OK"
    assert entry["duration_ms"] == 1.5
    assert entry["training_id"] == "0123456789abcdef0123"
    assert entry["time"].endswith("Z")
    assert datetime.fromisoformat(entry["time"].removesuffix("Z"))
    # Nothing the line does not need: no thread, process or caller fields.
    assert not {"thread", "process", "funcName", "lineno", "trace_id"} & entry.keys()


def test_an_exception_stays_within_its_line(lines: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("trainconductor_core").exception("failed")
    (line,) = lines.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert "RuntimeError: boom" in entry["exc_info"]


def test_below_the_level_nothing_is_written(lines: io.StringIO) -> None:
    logging.getLogger("tests.logs").debug("noise")
    assert lines.getvalue() == ""
