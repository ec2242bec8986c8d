"""A pytest plugin: a test run stopped by SIGTERM (CI's time limit, `kill`)
ends as it does on Ctrl-C. pytest stops the session and tears its fixtures
down, so the Redis servers and the control plane they started stop with it
instead of outliving the run (kwokctl's components are daemons of their own).

Registered from `tests/conftest.py`, so it runs for any subset of the tests.
"""

from __future__ import annotations

import pytest

from devstack.interrupts import sigterm_as_interrupt


def pytest_configure(config: pytest.Config) -> None:
    sigterm_as_interrupt()
