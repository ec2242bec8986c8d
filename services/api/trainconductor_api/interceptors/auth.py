"""Establishes who is calling before a method runs, or refuses the call.

The caller's `Identity` goes into a contextvar for the services, the rate
limit and the access log. Health and reflection stay open: probes and tools
like grpcurl must work without credentials, and they reveal no training.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from trainconductor_api import metrics
from trainconductor_api.authentication.authenticator import Authenticator
from trainconductor_api.authentication.credentials import credentials_of
from trainconductor_api.authentication.errors import AuthenticatorUnavailable, Unauthenticated
from trainconductor_api.identity import identity_var
from trainconductor_api.interceptors.wrap import (
    MethodName,
    StreamBehavior,
    UnaryBehavior,
    WrappingInterceptor,
    responses,
    wrap,
)

OPEN_SERVICES = frozenset(
    {
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
        "grpc.reflection.v1.ServerReflection",
    }
)

_ACCEPTED = metrics.AUTHENTICATIONS.labels("accepted")
_REFUSED = metrics.AUTHENTICATIONS.labels("refused")
_UNAVAILABLE = metrics.AUTHENTICATIONS.labels("unavailable")


class AuthInterceptor(WrappingInterceptor):
    def __init__(
        self, authenticator: Authenticator, *, self_authenticated: frozenset[str] = frozenset()
    ) -> None:
        """`self_authenticated`: services that check their callers
        themselves (ProgressService: a training pod's bound token, of
        another audience than the users')."""
        super().__init__()
        self._authenticator = authenticator
        self._passed = OPEN_SERVICES | self_authenticated

    async def _identify(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        authenticator = self._authenticator
        try:
            credentials = credentials_of(context, certificate=authenticator.uses_certificates)
            identity = await authenticator.authenticate(credentials)
        except Unauthenticated as err:
            _REFUSED.inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
        except AuthenticatorUnavailable:
            _UNAVAILABLE.inc()
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "credentials can not be checked right now; retry shortly",
            )
        _ACCEPTED.inc()
        identity_var.set(identity)

    def wrap_handler(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if MethodName.parse(method, handler).service in self._passed:
            return handler

        def unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                await self._identify(context)
                return await behavior(request, context)

            return call

        def stream(behavior: StreamBehavior) -> StreamBehavior:
            async def call(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                await self._identify(context)
                async for response in responses(behavior(request, context)):
                    yield response

            return call

        return wrap(handler, unary, stream)
