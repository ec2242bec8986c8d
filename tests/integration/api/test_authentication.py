"""Who is calling: static bearer tokens, mTLS with tokens, and the open
health and reflection services."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from tests.support.api import StartApi
from tests.support.certificates import Certificates
from tests.support.secret_scan import SecretRegistry
from tests.support.security import (
    StaticTokens,
    plain_channel,
    static_user,
    tls_channel,
    write_static_tokens,
)
from tests.support.trainings import Metadata, create


async def test_the_right_token_is_the_caller_and_the_user_header_is_ignored(
    start_api: StartApi, token_api_settings: dict[str, object], static_tokens: StaticTokens
) -> None:
    api = await start_api(**token_api_settings)
    async with plain_channel(api.port) as channel:
        metadata = (*static_tokens.alice.metadata(), ("x-tc-user", "bob"))
        assert (await create(channel, metadata)).owner == "alice"


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param((), id="no token at all"),
        pytest.param((("authorization", "Bearer not-a-token-we-issued"),), id="a wrong token"),
        pytest.param((("authorization", "Basic YWxpY2U6cHc="),), id="another scheme"),
        pytest.param((("authorization", "Bearer "),), id="an empty bearer token"),
        pytest.param((("x-tc-user", "alice"),), id="only a claimed user name"),
    ],
)
async def test_a_missing_or_wrong_token_is_unauthenticated_and_stores_nothing(
    start_api: StartApi,
    token_api_settings: dict[str, object],
    static_tokens: StaticTokens,
    metadata: Metadata,
    log_secrets: SecretRegistry,
) -> None:
    log_secrets.add("not-a-token-we-issued", "a bearer token nobody issued")
    log_secrets.add("YWxpY2U6cHc=", "a Basic credential")
    api = await start_api(**token_api_settings)
    async with plain_channel(api.port) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(channel, metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "Bearer not-a-token" not in (err.value.details() or "")
        stub = pb_grpc.TrainingServiceStub(channel)
        listed = await stub.ListTrainings(
            pb.ListTrainingsRequest(), metadata=static_tokens.admin.metadata()
        )
        assert list(listed.trainings) == []


async def test_a_streaming_call_without_a_token_is_unauthenticated(
    start_api: StartApi, token_api_settings: dict[str, object]
) -> None:
    api = await start_api(**token_api_settings)
    async with plain_channel(api.port) as channel:
        stream = pb_grpc.TrainingServiceStub(channel).WatchTrainings(pb.WatchTrainingsRequest())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stream:
                pass
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_answer_without_credentials(
    start_api: StartApi, token_api_settings: dict[str, object]
) -> None:
    api = await start_api(**token_api_settings)
    async with plain_channel(api.port) as channel:
        # The typed stubs of grpc_health and reflection list no methods.
        health: Any = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        reflection: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = [s.name async for r in responses for s in r.list_services_response.service]
        assert "trainconductor.v1.TrainingService" in names


async def first_refusal(
    channel: grpc.aio.Channel, metadata: Metadata, within: float
) -> grpc.StatusCode | None:
    """Creates until refused; the refusal's code, or None if none came in time."""
    for _ in range(int(within / 0.1)):
        try:
            await create(channel, metadata)
        except grpc.aio.AioRpcError as err:
            return err.code()
        await asyncio.sleep(0.1)
    return None


async def test_a_token_revoked_in_the_file_is_refused_without_restart(
    start_api: StartApi,
    token_api_settings: dict[str, object],
    static_tokens: StaticTokens,
    log_secrets: SecretRegistry,
) -> None:
    api = await start_api(**token_api_settings)
    async with plain_channel(api.port) as channel:
        await create(channel, static_tokens.bob.metadata())
        carol = static_user("carol")
        log_secrets.add_static_user(carol, "a token added to the file")
        write_static_tokens(static_tokens.path, [static_tokens.alice, carol])
        # The file is looked at about once a second.
        assert await first_refusal(channel, static_tokens.bob.metadata(), within=4) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert (await create(channel, carol.metadata())).owner == "carol"


async def test_with_mtls_and_tokens_a_token_names_the_caller_and_a_wrong_one_is_refused(
    start_api: StartApi,
    certificates: Certificates,
    token_api_settings: dict[str, object],
    static_tokens: StaticTokens,
) -> None:
    api = await start_api(
        **{**token_api_settings, **certificates.mtls(), "auth_modes": ["mtls", "static-token"]}
    )
    async with tls_channel(api.port, certificates.ca.cert, certificates.alice) as channel:
        assert (await create(channel)).owner == "alice"
        assert (await create(channel, static_tokens.bob.metadata())).owner == "bob"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(channel, (("authorization", "Bearer guess"),))
        # A failed token is not quietly replaced by the certificate's name.
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
