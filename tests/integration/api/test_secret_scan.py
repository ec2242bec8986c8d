"""The session's search of every log line for secrets (tests/support/
secret_scan.py), run on small sessions of its own: a leaked token fails the
session, wherever it was written, without the report repeating it; a clean
session passes; and a subset of a session is searched as well."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# Values written only by the sessions below.
TOKEN = "tok-" + "Q7" * 16
CAROLS_TOKEN = "tok-" + "K3" * 16
PASSWORD = "pw/with:odd?chars"

SESSION = {
    "pytest.ini": "[pytest]\nasyncio_default_fixture_loop_scope = function\n",
    "conftest.py": 'pytest_plugins = ("tests.support.secret_scan",)\n',
    "test_session.py": f"""
import logging
from pathlib import Path
import urllib.parse

import pytest

from tests.support.security import StaticUser

TOKEN = {TOKEN!r}
CAROLS_TOKEN = {CAROLS_TOKEN!r}
PASSWORD = {PASSWORD!r}
log = logging.getLogger("trainconductor_api.access")


@pytest.fixture
def carol() -> StaticUser:
    return StaticUser("carol", (), CAROLS_TOKEN)


def test_record_leak(log_secrets):
    log_secrets.add(TOKEN, "a made-up bearer token")
    log.info("rpc", extra={{"authorization": "Bearer " + TOKEN}})


def test_fixture_leak(carol):
    log.info("caller sent %s", carol.token)


def test_file_leak(log_secrets, tmp_path):
    log_secrets.add(PASSWORD, "a made-up Redis password")
    url = "redis://tc-api:" + urllib.parse.quote(PASSWORD, safe="") + "@127.0.0.1:6379/0"
    (tmp_path / "api.log").write_text('{{"message": "connecting", "url": "' + url + '"}}\\n')


def test_clean(log_secrets, tmp_path):
    log_secrets.add(TOKEN, "a made-up bearer token")
    log.info("rpc", extra={{"user": "carol"}})
    (tmp_path / "api.log").write_text("nothing to see\\n")
""",
}


def run_session(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    for name, text in SESSION.items():
        (directory / name).write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--basetemp", str(directory / "tmp"), *args],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def test_leaks_in_records_fixtures_and_log_files_fail_the_session(tmp_path: Path) -> None:
    done = run_session(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "1 failed, 4 passed" in output, output  # the tests themselves passed
    assert "secret scan of every log line" in output
    assert "a made-up bearer token\n    in test_session.py::test_record_leak" in output
    assert (
        "the bearer token of carol (fixture carol)\n    in test_session.py::test_fixture_leak"
        in (output)
    )
    assert "a made-up Redis password\n    in " in output
    assert "api.log, line 1" in output
    assert "test_clean" not in output.split("hold a secret")[1]
    # The report masks what it found.
    assert TOKEN not in output
    assert CAROLS_TOKEN not in output
    assert "pw%2Fwith" not in output


@pytest.mark.parametrize(
    ("selection", "code"),
    [
        pytest.param("test_clean", 0, id="a clean test alone passes"),
        pytest.param("test_file_leak", 1, id="a leaking test alone fails"),
    ],
)
def test_a_subset_of_the_session_is_searched_too(tmp_path: Path, selection: str, code: int) -> None:
    done = run_session(tmp_path, "-k", selection)
    assert done.returncode == code, done.stdout + done.stderr
