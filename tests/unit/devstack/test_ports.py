"""`make up`'s own ports are never drawn again for what it starts besides."""

from __future__ import annotations

import random

import pytest

from devstack import ports
from devstack.up import Port, check_ports


def test_a_port_make_up_checked_is_never_drawn_for_another_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked = ports.free_port()
    ports._handed_out.discard(checked)  # as if set by the user, not drawn here
    monkeypatch.setenv("TC_TEST_PORT", str(checked))
    check_ports([Port("a test's", "TC_TEST_PORT", 1)])
    # The draw offers the checked port first: it must be passed over.
    offered = iter([checked, checked])
    real = random.randrange
    monkeypatch.setattr(random, "randrange", lambda a, b: next(offered, None) or real(a, b))
    assert ports.free_port() != checked
