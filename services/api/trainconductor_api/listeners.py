"""Several grpc.aio servers sharing one port, in one process.

A grpc.aio server asks gRPC core for its next call only once the one before
has been handed over: under load, calls are taken one per turn of the event
loop, and each waits on Redis alone. Servers on one port (SO_REUSEPORT, the
kernel spreading connections over them) take several calls per turn, and
their Redis commands go out in one pipeline.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import grpc


class PortInUse(RuntimeError):
    pass


def reuse_port_option(listeners: int) -> tuple[str, int]:
    # One listener keeps the port to itself, as gRPC's default does not.
    return ("grpc.so_reuseport", 1 if listeners > 1 else 0)


def bind(
    servers: Sequence[grpc.aio.Server],
    host: str,
    port: int,
    credentials: Callable[[], grpc.ServerCredentials] | None = None,
) -> int:
    """Binds every server to host:port and returns the port (chosen by the
    first server when `port` is 0). With SO_REUSEPORT a second process of
    the same user would share the port without a word: the port is checked
    first, so that a clash fails at start as it does with one listener.
    `credentials` makes each server's own: a second server's port does not
    bind with the first's."""
    if len(servers) > 1 and port != 0:
        _check_free(host, port)
    for server in servers:
        address = f"{host}:{port}"
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials())
    return port


def _check_free(host: str, port: int) -> None:
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        # As gRPC binds: a port left in TIME_WAIT is free, a listening one is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise PortInUse(f"the port {host}:{port} can not be bound: {err.strerror}") from None
