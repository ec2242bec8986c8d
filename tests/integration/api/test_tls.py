"""TLS and mTLS on the gRPC port, with real certificates made by openssl."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.api import StartApi
from tests.support.certificates import CertificateAuthority, Certificates, KeyPair
from tests.support.security import plain_channel, tls_channel
from tests.support.trainings import create


async def refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(channel)
    return err.value.code()


async def test_tls_calls_succeed_and_plaintext_or_an_unknown_ca_is_refused(
    start_api: StartApi, certificates: Certificates
) -> None:
    api = await start_api(**certificates.server_tls())
    async with tls_channel(api.port, certificates.ca.cert) as channel:
        training = await create(channel)
        assert training.owner == "anonymous"  # auth_modes stays "none" here
    assert await refused(plain_channel(api.port)) == grpc.StatusCode.UNAVAILABLE
    # A client that trusts another CA does not accept the server's certificate.
    assert await refused(tls_channel(api.port, certificates.rogue_ca.cert)) == (
        grpc.StatusCode.UNAVAILABLE
    )


async def test_mtls_identity_is_the_certificate_subject_and_no_cert_is_refused(
    start_api: StartApi, certificates: Certificates
) -> None:
    api = await start_api(**certificates.mtls())
    async with tls_channel(api.port, certificates.ca.cert, certificates.alice) as channel:
        assert (await create(channel)).owner == "alice"
    # No certificate, or one from a CA the server does not trust: no handshake.
    assert await refused(tls_channel(api.port, certificates.ca.cert)) == (
        grpc.StatusCode.UNAVAILABLE
    )
    rogue = tls_channel(api.port, certificates.ca.cert, certificates.rogue_alice)
    assert await refused(rogue) == grpc.StatusCode.UNAVAILABLE


async def test_health_answers_over_mtls_without_credentials_beyond_the_certificate(
    start_api: StartApi, certificates: Certificates
) -> None:
    api = await start_api(**certificates.mtls())
    async with tls_channel(api.port, certificates.ca.cert, certificates.alice) as channel:
        health: object = health_pb2_grpc.HealthStub(channel)
        response = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def _replace(source: KeyPair, target: KeyPair) -> None:
    # As a Secret volume or cert-manager does it: new files in place.
    shutil.copyfile(source.key, target.key.with_suffix(".tmp-key"))
    shutil.copyfile(source.cert, target.cert.with_suffix(".tmp-cert"))
    target.key.with_suffix(".tmp-key").replace(target.key)
    target.cert.with_suffix(".tmp-cert").replace(target.cert)


async def test_a_rotated_certificate_is_served_to_new_connections_without_restart(
    start_api: StartApi, certificates: Certificates, tmp_path: Path
) -> None:
    served = KeyPair(tmp_path / "tls.crt", tmp_path / "tls.key")
    shutil.copyfile(certificates.server.cert, served.cert)
    shutil.copyfile(certificates.server.key, served.key)
    api = await start_api(tls_cert_file=served.cert, tls_key_file=served.key)

    old_clients = tls_channel(api.port, certificates.ca.cert)
    await create(old_clients)  # a connection made before the rotation
    new_ca = CertificateAuthority(tmp_path / "new-ca", "new-ca")
    assert await refused(tls_channel(api.port, new_ca.cert)) == grpc.StatusCode.UNAVAILABLE

    _replace(new_ca.server("api"), served)
    await asyncio.sleep(0.05)
    async with tls_channel(api.port, new_ca.cert) as channel:
        await create(channel)  # a new connection: the new certificate
    assert await refused(tls_channel(api.port, certificates.ca.cert)) == (
        grpc.StatusCode.UNAVAILABLE
    )
    # The connection that was open goes on with the certificate it started with.
    await create(old_clients)
    await old_clients.close()


async def test_a_half_done_rotation_keeps_the_last_good_certificate(
    start_api: StartApi, certificates: Certificates, tmp_path: Path
) -> None:
    served = KeyPair(tmp_path / "tls.crt", tmp_path / "tls.key")
    shutil.copyfile(certificates.server.cert, served.cert)
    shutil.copyfile(certificates.server.key, served.key)
    api = await start_api(tls_cert_file=served.cert, tls_key_file=served.key)
    # A new certificate whose key has not arrived yet.
    shutil.copyfile(certificates.ca.server("api-next").cert, served.cert)
    async with tls_channel(api.port, certificates.ca.cert) as channel:
        await create(channel)
