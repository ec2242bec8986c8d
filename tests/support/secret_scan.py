"""A pytest plugin: no token or password a test used may appear in any log
line written during the session.

Tests register each secret they make with the `log_secrets` fixture;
credentials that fixtures hand out (`StaticUser`, alone or inside another
value) are registered by the plugin itself, with the digest the token file
holds. When the session ends, after every fixture has stopped its services,
two places are searched for each secret (as written, JSON-escaped and
URL-quoted):

- every log record this process emitted during the session, rendered with
  its message, arguments, extra fields and traceback; the project's own
  loggers are turned up to DEBUG for the session so that every line they
  could write in any deployment is seen;
- every `*.log` file under the session's base temporary directory, where
  the service processes the tests start write their logs.

A secret found fails the session with a report that names the secret and
where it was, with the secret masked: the report is a log too.

Registered from `tests/conftest.py`, so it runs for any subset of the tests.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import logging
import sys
import traceback
import urllib.parse
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.security import StaticUser
from trainconductor_core.logs import RECORD_ATTRIBUTES

# The loggers of the services, the core and the client.
PROJECT_LOGGERS = (
    "trainconductor_api",
    "trainconductor_core",
    "trainconductor_controller",
    "trainconductor_client",
)
# Shorter values would be found by chance in unrelated text.
MIN_SECRET_LENGTH = 8
_BETWEEN_TESTS = "(outside any test)"


@dataclass(frozen=True)
class Secret:
    value: str
    what: str  # for the report: never the value

    def variants(self) -> set[str]:
        """The forms a log could hold it in."""
        return {
            self.value,
            json.dumps(self.value)[1:-1],
            urllib.parse.quote(self.value, safe=""),
        }


class SecretRegistry:
    """The secrets of one session."""

    def __init__(self) -> None:
        self._secrets: dict[str, Secret] = {}

    def add(self, value: str, what: str) -> str:
        """Registers `value` (described by `what`) and returns it."""
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"{what} is shorter than {MIN_SECRET_LENGTH} characters: too short to look for"
            )
        self._secrets.setdefault(value, Secret(value, what))
        return value

    def add_static_user(self, user: StaticUser, where: str) -> None:
        self.add(user.token, f"the bearer token of {user.user} ({where})")
        digest = hashlib.sha256(user.token.encode()).hexdigest()
        self.add(digest, f"the digest of {user.user}'s token ({where})")

    def __iter__(self) -> Iterator[Secret]:
        return iter(list(self._secrets.values()))

    def __len__(self) -> int:
        return len(self._secrets)


@dataclass(frozen=True)
class Line:
    where: str  # the test, or the file
    origin: str  # the logger, or the line number
    text: str


class _Recorder(logging.Handler):
    """Keeps the rendered text of every record, with the test it came from."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.lines: list[Line] = []
        self.current = _BETWEEN_TESTS

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(Line(self.current, f"logger {record.name}", _render(record)))
        except Exception:  # noqa: BLE001  # a broken record must not break the test
            self.handleError(record)


def _render(record: logging.LogRecord) -> str:
    try:
        parts = [record.getMessage()]
    except (TypeError, ValueError):
        parts = [repr(record.msg), repr(record.args)]
    for name, value in record.__dict__.items():
        if name not in RECORD_ATTRIBUTES:
            parts.append(f"{name}={value}")
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return " ".join(parts)


@dataclass(frozen=True)
class Leak:
    secret: Secret
    line: Line

    def describe(self) -> str:
        text = self.line.text
        for variant in self.secret.variants():
            text = text.replace(variant, "*" * 8)
        if len(text) > 300:
            text = text[:300] + "..."
        return f"{self.secret.what}\n    in {self.line.where}, {self.line.origin}: {text}"


def _found(secrets: SecretRegistry, text: str) -> Iterator[tuple[Secret, int]]:
    """Each secret in `text`, with where each of its occurrences starts."""
    for secret in secrets:
        for variant in secret.variants():
            at = text.find(variant)
            while at != -1:
                yield secret, at
                at = text.find(variant, at + 1)


def leaks_in_records(secrets: SecretRegistry, lines: list[Line]) -> list[Leak]:
    """Each secret in each of the recorded lines, once per line."""
    text = "\n".join(line.text for line in lines)
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line.text) + 1
    leaks: dict[tuple[str, int], Leak] = {}
    for secret, at in _found(secrets, text):
        index = bisect.bisect_right(starts, at) - 1
        leaks.setdefault((secret.value, index), Leak(secret, lines[index]))
    return list(leaks.values())


def leaks_in_file(secrets: SecretRegistry, path: Path) -> tuple[list[Leak], int]:
    """Each secret in each line of the file, once per line; and its line count.
    The file is read whole but split only where a secret is."""
    text = path.read_text(errors="replace")
    leaks: dict[tuple[str, int], Leak] = {}
    for secret, at in _found(secrets, text):
        number = text.count("\n", 0, at) + 1
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        line = Line(str(path), f"line {number}", text[start : end if end != -1 else None])
        leaks.setdefault((secret.value, number), Leak(secret, line))
    unterminated = bool(text) and not text.endswith("\n")
    return list(leaks.values()), text.count("\n") + unterminated


def log_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*.log") if p.is_file())


class SecretScan:
    """The plugin: one per session."""

    def __init__(self) -> None:
        self.secrets = SecretRegistry()
        self.recorder = _Recorder()
        self.base_temp: Path | None = None
        self.verdict = ""
        self._levels: dict[str, int] = {}

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._attach()
        for name in PROJECT_LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)

    def _attach(self) -> None:
        # A test that configures logging may replace the root's handlers.
        root = logging.getLogger()
        if self.recorder not in root.handlers:
            root.addHandler(self.recorder)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._attach()
        self.recorder.current = nodeid

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.recorder.current = _BETWEEN_TESTS

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        value = yield
        for user in _static_users(value, depth=3):
            self.secrets.add_static_user(user, f"fixture {fixturedef.argname}")
        return value

    @pytest.hookimpl(trylast=True)  # after the fixtures' teardown stopped every service
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        logging.getLogger().removeHandler(self.recorder)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        if not len(self.secrets):
            return
        leaks = leaks_in_records(self.secrets, self.recorder.lines)
        searched = len(self.recorder.lines)
        if self.base_temp is not None and self.base_temp.is_dir():
            for path in log_files(self.base_temp):
                found, lines = leaks_in_file(self.secrets, path)
                leaks += found
                searched += lines
        self.verdict = (
            f"secret scan: {len(self.secrets)} secrets, {searched} log lines searched, "
            f"{len(leaks)} found"
        )
        if not leaks:
            return
        report = "\n".join(leak.describe() for leak in leaks)
        message = (
            f"{len(leaks)} log line(s) written during this session hold a secret "
            f"({len(self.secrets)} secrets, {searched} lines searched):\n{report}"
        )
        failure = pytest.TestReport(
            nodeid="secret scan of every log line",
            location=(__file__, None, "secret scan of every log line"),
            keywords={},
            outcome="failed",
            longrepr=message,
            when="call",
        )
        # Counted and shown with the failed tests in the summary that follows.
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.stats.setdefault("failed", []).append(failure)
        else:
            print(message, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.verdict:
            terminalreporter.write_line(self.verdict)


def _static_users(value: object, depth: int) -> Iterator[StaticUser]:
    if isinstance(value, StaticUser):
        yield value
    elif depth > 0 and dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _static_users(getattr(value, f.name), depth - 1)
    elif depth > 0 and isinstance(value, tuple | list):
        for item in value:
            yield from _static_users(item, depth - 1)


_PLUGIN_NAME = "secret-scan"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SecretScan(), _PLUGIN_NAME)


def _scan(config: pytest.Config) -> SecretScan:
    scan = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    assert isinstance(scan, SecretScan)
    return scan


@pytest.fixture(scope="session")
def log_secrets(pytestconfig: pytest.Config) -> SecretRegistry:
    """The registry of secrets that no log line may hold: add every token
    and password a test makes."""
    return _scan(pytestconfig).secrets


@pytest.fixture(scope="session", autouse=True)
def _secret_scan_base_temp(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Where the service processes of this session write their logs."""
    _scan(pytestconfig).base_temp = tmp_path_factory.getbasetemp()
