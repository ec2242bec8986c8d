"""`tcctl` and the Python client against an API that wants TLS, client
certificates or bearer tokens."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from devstack.specs import lora_spec
from tests.support.api import StartApi
from tests.support.certificates import Certificates
from tests.support.security import StaticTokens
from tests.support.tcctl import EXAMPLES, tcctl_async
from trainconductor_client.client import Client
from trainconductor_client.errors import Unauthenticated, Unavailable

EXIT_UNAVAILABLE, EXIT_DENIED = 5, 6


async def test_tcctl_with_a_ca_and_a_token(
    tmp_path: Path,
    start_api: StartApi,
    certificates: Certificates,
    token_api_settings: dict[str, object],
    static_tokens: StaticTokens,
) -> None:
    api = await start_api(**token_api_settings, **certificates.server_tls())
    address = f"127.0.0.1:{api.port}"
    tls = ("--tls", "--ca-file", str(certificates.ca.cert))
    token = ("--token", static_tokens.alice.token)
    created = await tcctl_async(
        address, *tls, *token, "create", "-f", str(EXAMPLES / "lora.yaml"), "-o", "name"
    )
    assert created.code == 0, created.err
    listed = await tcctl_async(address, *tls, *token, "list", "-o", "name")
    assert listed.out.split() == [created.out.strip()]
    token_file = tmp_path / "token"
    token_file.write_text(static_tokens.bob.token + "\n")
    as_bob = await tcctl_async(address, *tls, "--token-file", str(token_file), "list", "-o", "name")
    assert (as_bob.code, as_bob.out.split()) == (0, [])

    no_token = await tcctl_async(address, *tls, "list")
    assert no_token.code == EXIT_DENIED
    assert no_token.err.startswith("tcctl: not allowed")
    assert static_tokens.alice.token not in no_token.err
    plaintext = await tcctl_async(address, "--timeout", "2", *token, "list")
    assert plaintext.code == EXIT_UNAVAILABLE


async def test_tcctl_with_a_client_certificate(
    start_api: StartApi, certificates: Certificates
) -> None:
    api = await start_api(**certificates.mtls())
    address = f"127.0.0.1:{api.port}"
    ca = ("--ca-file", str(certificates.ca.cert))
    cert = ("--cert-file", str(certificates.alice.cert), "--key-file", str(certificates.alice.key))
    created = await tcctl_async(
        address, *ca, *cert, "create", "-f", str(EXAMPLES / "lora.yaml"), "-o", "json"
    )
    assert created.code == 0, created.err
    assert '"owner": "alice"' in created.out
    without = await tcctl_async(address, "--timeout", "2", *ca, "list")
    assert without.code == EXIT_UNAVAILABLE


async def test_the_python_client_with_tls_and_a_token_creates_lists_and_follows(
    tmp_path: Path,
    start_api: StartApi,
    certificates: Certificates,
    token_api_settings: dict[str, object],
    static_tokens: StaticTokens,
) -> None:
    api = await start_api(**token_api_settings, **certificates.server_tls())

    token_file = tmp_path / "token"

    def as_alice() -> None:
        with Client(
            f"127.0.0.1:{api.port}",
            tls=True,
            ca_file=certificates.ca.cert,
            token=static_tokens.alice.token,
        ) as client:
            training = client.create(lora_spec())
            assert training.owner == "alice"
            assert [t.id for t in client.list()] == [training.id]
            assert client.cancel(training.id).cancel_requested
            for event in client.watch(training.id):
                assert event.training_id == training.id
                break
        without_token = Client(f"127.0.0.1:{api.port}", tls=True, ca_file=certificates.ca.cert)
        with without_token, pytest.raises(Unauthenticated):
            without_token.get(training.id)
        # A token file is read again when it changes, as a renewed projected token is.
        token_file.write_text(static_tokens.bob.token)
        with Client(
            f"127.0.0.1:{api.port}", tls=True, ca_file=certificates.ca.cert, token_file=token_file
        ) as client:
            assert client.create(lora_spec()).owner == "bob"
            token_file.write_text(static_tokens.alice.token)
            os.utime(token_file, ns=(1, 1))
            assert client.create(lora_spec()).owner == "alice"
        plaintext = Client(
            f"127.0.0.1:{api.port}", token=static_tokens.alice.token, retries=0, timeout=2
        )
        with plaintext, pytest.raises(Unavailable):  # plaintext to a TLS port
            plaintext.get(training.id)

    await asyncio.to_thread(as_alice)
