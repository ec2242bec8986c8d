"""Gives a grpc.aio server its services as generic handlers only.

A generated `add_*Servicer_to_server` gives the server each method twice:
in a generic handler, and as a registered method. grpc.aio keeps one
request for a call out in gRPC core per registered method, and its accept
loop waits on all of them again for every call it takes (`asyncio.wait`,
with a done callback added to each and removed): with the API's fifteen
methods, about a third of the Python function calls of a GetTraining.
Served by generic handlers only, a server keeps one request out, and finds
a method by a dict lookup in each service's handler in turn
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import grpc


class _GenericOnly:
    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Left out: the generic handler given just before serves the same methods."""


def generic_only(server: grpc.aio.Server) -> grpc.aio.Server:
    """`server`, for a generated `add_*Servicer_to_server` to add a service
    to: it takes the service's generic handler and leaves out its registered
    methods. Not for reflection's `enable_server_reflection`, which picks
    its asyncio servicer by the server's class."""
    # The generated functions call only the two methods above.
    return cast(grpc.aio.Server, _GenericOnly(server))
