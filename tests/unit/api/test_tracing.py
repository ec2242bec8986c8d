"""The network attributes of a recorded server span, read from grpc's name for the peer."""

from __future__ import annotations

import pytest

from trainconductor_api.interceptors.tracing import peer_attributes


@pytest.mark.parametrize(
    ("peer", "attributes"),
    [
        pytest.param(
            "ipv4:10.1.2.80:65123",
            {
                "network.transport": "tcp",
                "network.type": "ipv4",
                "network.peer.address": "10.1.2.80",
                "network.peer.port": 65123,
            },
            id="an IPv4 peer gives its address and port",
        ),
        pytest.param(
            "ipv6:%5B::1%5D:50052",
            {
                "network.transport": "tcp",
                "network.type": "ipv6",
                "network.peer.address": "::1",
                "network.peer.port": 50052,
            },
            id="an escaped IPv6 peer gives its address without brackets",
        ),
        pytest.param(
            "ipv6:[2001:db8::7]:443",
            {
                "network.transport": "tcp",
                "network.type": "ipv6",
                "network.peer.address": "2001:db8::7",
                "network.peer.port": 443,
            },
            id="an unescaped IPv6 peer too",
        ),
        pytest.param(
            "unix:/run/api.sock",
            {"network.transport": "unix", "network.peer.address": "/run/api.sock"},
            id="a Unix socket peer gives its path and no port",
        ),
        pytest.param(
            "ipv4:10.1.2.80",
            {
                "network.transport": "tcp",
                "network.type": "ipv4",
                "network.peer.address": "10.1.2.80",
            },
            id="a peer without a port gives its address alone",
        ),
        pytest.param("vsock:3:80", {}, id="a kind of peer it does not know gives nothing"),
        pytest.param("", {}, id="no peer gives nothing"),
    ],
)
def test_peer_attributes(peer: str, attributes: dict[str, str | int]) -> None:
    assert peer_attributes(peer) == attributes
