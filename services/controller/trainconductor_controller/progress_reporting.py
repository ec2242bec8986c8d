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
# Read by trainconductor_client's reporter (and its Trainer callback).
ADDRESS_ENV = "TC_PROGRESS_ADDRESS"
TOKEN_FILE_ENV = "TC_PROGRESS_TOKEN_FILE"


def progress_env(s: ControllerSettings) -> list[dict[str, Any]]:
    """The variables that tell a trainer where and how to report; none when
    the operator gave no address (reports are then off)."""
    if not s.progress_address:
        return []
    return [
        {"name": ADDRESS_ENV, "value": s.progress_address},
        {"name": TOKEN_FILE_ENV, "value": TOKEN_FILE},
    ]


def progress_volume(s: ControllerSettings) -> list[dict[str, Any]]:
    if not s.progress_address:
        return []
    token = {
        "audience": s.progress_token_audience,
        "expirationSeconds": s.progress_token_expiration_seconds,
        "path": "token",
    }
    return [{"name": VOLUME_NAME, "projected": {"sources": [{"serviceAccountToken": token}]}}]


def progress_mount(s: ControllerSettings) -> list[dict[str, Any]]:
    if not s.progress_address:
        return []
    return [{"name": VOLUME_NAME, "mountPath": TOKEN_DIRECTORY, "readOnly": True}]
