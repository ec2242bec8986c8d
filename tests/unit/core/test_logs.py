"""The log line format operators' tools parse: one JSON object per line, as
a process configured like the services writes them to its stdout."""

from __future__ import annotations

import io
import json
import logging
import re
import select
import subprocess
import sys
import textwrap
from datetime import datetime

from trainconductor_core.logs import BufferedLines, JsonLines


def lines_of(program: str) -> list[str]:
    setup = "from trainconductor_core.logs import configure_logging, training_id_var\n"
    setup += "import logging\nconfigure_logging('INFO', 'api')\n"
    result = subprocess.run(
        [sys.executable, "-c", setup + textwrap.dedent(program)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.splitlines()


def test_a_line_is_one_json_object_with_the_fields_and_the_training_in_scope() -> None:
    (line,) = lines_of(
        """
        training_id_var.set("0123456789abcdef0123")
        logging.getLogger("trainconductor_api.access").info(
            "rpc", extra={"grpc_code": "OK", "duration_ms": 1.5}
        )
        """
    )
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


def test_an_exception_stays_within_its_line() -> None:
    (line,) = lines_of(
        """
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("trainconductor_core").exception("failed")
        """
    )
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert "RuntimeError: boom" in entry["exc_info"]


def test_below_the_level_nothing_is_written() -> None:
    assert lines_of('logging.getLogger("trainconductor_api").debug("noise")') == []


def test_values_json_has_no_type_for_still_make_a_line() -> None:
    lines = lines_of(
        """
        from pathlib import Path
        log = logging.getLogger("trainconductor_core")
        log.info("odd values", extra={"path": Path("/mnt/data"), "count": 2**70})
        log.info("after")
        """
    )
    entries = [json.loads(line) for line in lines]
    assert entries[0]["path"] == "/mnt/data"
    assert entries[0]["count"] == 2**70
    assert entries[1]["message"] == "after"


def test_a_quiet_process_still_writes_its_last_line_soon() -> None:
    """Lines below WARNING wait to be written together, but not for ever:
    the line shows while the process goes on, without another line after it."""
    setup = "from trainconductor_core.logs import configure_logging\nimport logging, time\n"
    program = setup + textwrap.dedent(
        """
        configure_logging("INFO", "api")
        logging.getLogger("trainconductor_api").info("ready")
        time.sleep(120)
        """
    )
    with subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, "the line was not written within 30 s"
            assert json.loads(process.stdout.readline())["message"] == "ready"
        finally:
            process.kill()


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_go_out_together_and_a_warning_at_once_after_them() -> None:
    stream = _CountingStream()
    handler = BufferedLines(stream)
    handler.setFormatter(JsonLines("api"))
    log = logging.getLogger("test_lines_go_out_together")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        for n in range(100):
            log.info("line %d", n)
        log.warning("the warning")
        written = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    finally:
        log.removeHandler(handler)

    assert written == [f"line {n}" for n in range(100)] + ["the warning"]
    # A write each would be 101; the flushing thread may add a few.
    assert stream.writes <= 20


def test_a_direct_line_is_the_line_logging_writes() -> None:
    direct, logged = (
        json.loads(line)
        for line in lines_of(
            """
            from trainconductor_core.logs import DirectLines
            training_id_var.set("0123456789abcdef0123")
            fields = {"grpc_code": "OK", "duration_ms": 1.5, "user": "alice"}
            DirectLines("trainconductor_api.access").log(logging.INFO, "rpc", dict(fields))
            logging.getLogger("trainconductor_api.access").info("rpc", extra=dict(fields))
            DirectLines("trainconductor_api.access").log(logging.DEBUG, "rpc", dict(fields))
            """
        )
    )
    assert list(direct) == list(logged), "the same fields in the same order"
    for time in (direct.pop("time"), logged.pop("time")):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", time)
    assert (
        direct
        == logged
        == {
            "level": "INFO",
            "logger": "trainconductor_api.access",
            "message": "rpc",
            "service": "api",
            "grpc_code": "OK",
            "duration_ms": 1.5,
            "user": "alice",
            "training_id": "0123456789abcdef0123",
        }
    )


def test_direct_lines_go_through_logging_when_it_has_other_handlers() -> None:
    (line,) = lines_of(
        """
        import sys
        from trainconductor_core.logs import DirectLines
        logger = logging.getLogger("trainconductor_api.access")
        logger.addHandler(logging.StreamHandler(sys.stdout))
        logger.propagate = False
        DirectLines("trainconductor_api.access").log(logging.INFO, "rpc", {"grpc_code": "OK"})
        """
    )
    assert line == "rpc", "the line of the handler the logger was given, not the JSON one"
