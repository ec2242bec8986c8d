"""ServiceAccount tokens against the real kube-apiserver: a token issued by
the TokenRequest API for our audience authenticates as its service account;
tokens for another audience, of a deleted service account, expired, or made
up do not. The API runs as a process, as in a pod, and never logs a token."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from devstack.stack import Cluster

AUDIENCE = f"train-conductor-e2e-{uuid.uuid4().hex[:6]}"


@dataclass
class Api:
    service: Service
    channel: grpc.Channel

    @property
    def trainings(self) -> pb_grpc.TrainingServiceStub:
        return pb_grpc.TrainingServiceStub(self.channel)

    def create(self, token: str) -> pb.Training:
        request = pb.CreateTrainingRequest(spec=lora_spec())
        metadata = (("authorization", f"Bearer {token}"),)
        return self.trainings.CreateTraining(request, metadata=metadata, timeout=15).training

    def refusal(self, token: str) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as err:
            self.create(token)
        code: grpc.StatusCode = err.value.code()
        return code


@pytest.fixture
def api(cluster: Cluster, tmp_path: Path) -> Iterator[Api]:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    port, http_port = free_port(), free_port()
    service = Service(
        "api",
        "trainconductor_api.main",
        {
            "TC_REDIS_URL": redis_server.url,
            "TC_GRPC_HOST": "127.0.0.1",
            "TC_GRPC_PORT": str(port),
            "TC_HTTP_PORT": str(http_port),
            "TC_DRAIN_SECONDS": "0.5",
            "TC_LOG_LEVEL": "DEBUG",
            "TC_AUTH_MODES": '["token-review"]',
            "TC_KUBECONFIG": str(cluster.kubeconfig),
            "TC_TOKEN_REVIEW_AUDIENCE": AUDIENCE,
        },
        tmp_path,
    ).start()
    try:
        service.wait_http_ok(f"http://127.0.0.1:{http_port}/metrics")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Api(service, channel)
    finally:
        service.signal(signal.SIGTERM)
        redis_server.stop()


def service_account(kube: client.ApiClient, namespace: str, name: str) -> None:
    client.CoreV1Api(kube).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )


def token_for(
    kube: client.ApiClient, namespace: str, name: str, audience: str | None = AUDIENCE
) -> str:
    """A token from the TokenRequest API, as the kubelet gets a projected one."""
    spec = client.V1TokenRequestSpec(
        audiences=[audience] if audience else [], expiration_seconds=600
    )
    response = client.CoreV1Api(kube).create_namespaced_service_account_token(
        name, namespace, client.AuthenticationV1TokenRequest(spec=spec)
    )
    return str(response.status.token)


def test_a_service_account_token_for_our_audience_authenticates_as_the_service_account(
    kube: client.ApiClient, namespace: str, api: Api
) -> None:
    service_account(kube, namespace, "trainer")
    token = token_for(kube, namespace, "trainer")
    training = api.create(token)
    assert training.owner == f"system:serviceaccount:{namespace}:trainer"
    # The cached answer serves the next calls; the identity stays the same.
    assert api.create(token).owner == training.owner

    # Another service account does not see the trainer's training.
    service_account(kube, namespace, "other")
    other = (("authorization", f"Bearer {token_for(kube, namespace, 'other')}"),)
    with pytest.raises(grpc.RpcError) as err:
        api.trainings.GetTraining(pb.GetTrainingRequest(id=training.id), metadata=other)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    log = api.service.stopped_log()
    assert "Bearer" not in log
    assert token not in log


def test_tokens_for_another_audience_deleted_accounts_or_made_up_are_refused(
    kube: client.ApiClient, namespace: str, api: Api
) -> None:
    service_account(kube, namespace, "trainer")
    service_account(kube, namespace, "leaver")
    other_audience = token_for(kube, namespace, "trainer", audience="someone-else")
    apiserver_audience = token_for(kube, namespace, "trainer", audience=None)
    leavers = token_for(kube, namespace, "leaver")
    client.CoreV1Api(kube).delete_namespaced_service_account("leaver", namespace)

    assert api.refusal(other_audience) == grpc.StatusCode.UNAUTHENTICATED
    assert api.refusal(apiserver_audience) == grpc.StatusCode.UNAUTHENTICATED
    assert api.refusal(leavers) == grpc.StatusCode.UNAUTHENTICATED
    assert api.refusal("not-a-token") == grpc.StatusCode.UNAUTHENTICATED
    # A forged token: a real one with its signature cut off and replaced.
    header, payload, _ = token_for(kube, namespace, "trainer").split(".")
    assert api.refusal(f"{header}.{payload}.AAAA") == grpc.StatusCode.UNAUTHENTICATED

    log = api.service.stopped_log()
    for token in (other_audience, apiserver_audience, leavers):
        assert token not in log


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_json(segment: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def resigned(token: str, signing_key: Path, **claims: object) -> str:
    """`token` with `claims` changed, signed again (RS256) with the cluster's
    own ServiceAccount signing key, as kube-apiserver would have issued it."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed: `apt-get install openssl`"
    header, payload, _ = token.split(".")
    body = _b64url(json.dumps({**_b64url_json(payload), **claims}).encode())
    signing_input = f"{header}.{body}".encode()
    signature = subprocess.run(
        [openssl, "dgst", "-sha256", "-sign", str(signing_key)],
        input=signing_input, capture_output=True, check=True,
    ).stdout  # fmt: skip
    return f"{header}.{body}.{_b64url(signature)}"


def test_an_expired_token_is_refused(
    cluster: Cluster, kube: client.ApiClient, namespace: str, api: Api
) -> None:
    """TokenRequest will not issue a token shorter than ten minutes, so the
    expired token is a real one whose times are moved into the past and which
    is signed again with the cluster's signing key. The same token re-signed
    with times around now authenticates: only the expiry makes it fail."""
    assert cluster.local is not None, "signing a token needs the local control plane's key"
    key = cluster.local.service_account_signing_key
    assert key.exists(), f"no ServiceAccount signing key at {key}"
    service_account(kube, namespace, "trainer")
    token = token_for(kube, namespace, "trainer")

    now = int(time.time())
    current = resigned(token, key, iat=now - 60, nbf=now - 60, exp=now + 600)
    assert api.create(current).owner == f"system:serviceaccount:{namespace}:trainer"

    expired = resigned(token, key, iat=now - 1200, nbf=now - 1200, exp=now - 600)
    assert api.refusal(expired) == grpc.StatusCode.UNAUTHENTICATED
    assert expired not in api.service.stopped_log()
