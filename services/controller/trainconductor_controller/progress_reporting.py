"""What a training pod needs to report its progress: the API's address and
a projected ServiceAccount token for the progress audience. Pure.

The kubelet writes the token to a file and renews it before it expires; the
token is bound to the pod, so the API knows which pod reports (and so which
training) and a token taken from a pod dies with it. Its audience is the
API's alone: the apiserver takes it for nothing else.
"""

from __future__ import annotations

from typing import Any

from trainconductor_controller.settings import ControllerSettings

VOLUME_NAME = "trainconductor-progress-token"
TOKEN_DIRECTORY = "/var/run/secrets/trainconductor.dev/progress"
TOKEN_FILE = f"{TOKEN_DIRECTORY}/token"
CA_FILE = f"{TOKEN_DIRECTORY}/ca.crt"
# Read by trainconductor_client's reporter (and its Trainer callback).
ADDRESS_ENV = "TC_PROGRESS_ADDRESS"
TOKEN_FILE_ENV = "TC_PROGRESS_TOKEN_FILE"
# Kubeflow Trainer's (KEP-2779), read by transformers' KubeflowCallback and
# the Kubeflow SDK.
KUBEFLOW_URL_ENV = "KUBEFLOW_TRAINER_SERVER_URL"
KUBEFLOW_TOKEN_ENV = "KUBEFLOW_TRAINER_SERVER_TOKEN"
KUBEFLOW_CA_ENV = "KUBEFLOW_TRAINER_SERVER_CA_CERT"


def _reporting(s: ControllerSettings) -> bool:
    return bool(s.progress_address or s.kubeflow_status_address)


def kubeflow_status_url(s: ControllerSettings, training_id: str) -> str:
    """Kubeflow's URL of a TrainJob's status, the training standing for it."""
    return (
        f"http://{s.kubeflow_status_address}/apis/trainer.kubeflow.org/v1alpha1/namespaces/"
        f"{s.namespace}/trainjobs/{training_id}/status"
    )


def progress_env(s: ControllerSettings, training_id: str) -> list[dict[str, Any]]:
    """The variables that tell a trainer where and how to report; none when
    the operator gave no address (reports are then off)."""
    env: list[dict[str, Any]] = []
    if s.progress_address:
        env += [
            {"name": ADDRESS_ENV, "value": s.progress_address},
            {"name": TOKEN_FILE_ENV, "value": TOKEN_FILE},
        ]
    if s.kubeflow_status_address:
        env += [
            {"name": KUBEFLOW_URL_ENV, "value": kubeflow_status_url(s, training_id)},
            {"name": KUBEFLOW_TOKEN_ENV, "value": TOKEN_FILE},
            {"name": KUBEFLOW_CA_ENV, "value": CA_FILE},
        ]
    return env


def progress_volume(s: ControllerSettings) -> list[dict[str, Any]]:
    if not _reporting(s):
        return []
    token = {
        "audience": s.progress_token_audience,
        "expirationSeconds": s.progress_token_expiration_seconds,
        "path": "token",
    }
    sources: list[dict[str, Any]] = [{"serviceAccountToken": token}]
    if s.kubeflow_status_address:
        # Kubeflow's clients want a CA file; the endpoint is plain HTTP, so
        # this one (the cluster's, in every namespace) is only read.
        ca = {"key": "ca.crt", "path": "ca.crt"}
        sources.append({"configMap": {"name": "kube-root-ca.crt", "items": [ca]}})
    return [{"name": VOLUME_NAME, "projected": {"sources": sources}}]


def progress_mount(s: ControllerSettings) -> list[dict[str, Any]]:
    if not _reporting(s):
        return []
    return [{"name": VOLUME_NAME, "mountPath": TOKEN_DIRECTORY, "readOnly": True}]
