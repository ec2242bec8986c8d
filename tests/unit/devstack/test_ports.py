"""`make up`'s own ports are never drawn again for what it starts besides,
and none is drawn where kwokctl takes the control plane's."""

from __future__ import annotations

import pytest

from devstack import ports
from devstack.up import Port, check_ports


def test_a_port_make_up_checked_is_kept_from_the_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = ports.free_port()
    ports._handed_out.discard(checked)  # as if set by the user, not drawn here
    monkeypatch.setenv("TC_TEST_PORT", str(checked))
    check_ports([Port("a test's", "TC_TEST_PORT", 1)])
    # free_port() draws none that is handed out: claim() says whether it could.
    assert not ports.claim(checked), "the checked port could still be drawn for another server"


def test_no_port_is_drawn_where_kwokctl_takes_the_control_planes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A draw of its own, so that it takes none of the run's ports.
    monkeypatch.setattr(ports, "_handed_out", set())
    drawn = {ports.free_port() for _ in range(2000)}
    # A test's API once lost its port to kwokctl's etcd or API server that way.
    assert not drawn & set(ports.KWOKCTL_PORTS)
