"""Free loopback ports for the servers the tests start.

They come from just below the kernel's ephemeral range. A port found free by
binding port 0 is an ephemeral one, which the kernel may give to an outgoing
connection before the server that was meant to have it binds it; a test's
Jaeger once lost its port that way.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_SPAN = 10_000  # how many ports below the ephemeral range are drawn from
_handed_out: set[int] = set()

# kwokctl gives a cluster's components the free ports counting down from
# 32767 (kwok's GetUnusedPort), whatever the kernel's range: a port drawn
# there could be taken by a cluster started after the draw. A thousand
# leaves room for the clusters of a test run.
KWOKCTL_PORTS = range(32768 - 1000, 32768)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    high = _ephemeral_low()
    low = max(1024, high - _SPAN)
    for _ in range(1000):
        port = random.randrange(low, high)
        if port in _handed_out or port in KWOKCTL_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken
        _handed_out.add(port)
        return port
    raise AssertionError(f"no free loopback port in {low}-{high - 1}")


def claim(port: int) -> bool:
    """Takes `port` (one used before, say) if it is free; returns whether it was."""
    if port in _handed_out:
        return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    _handed_out.add(port)
    return True
