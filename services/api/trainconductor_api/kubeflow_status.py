"""Kubeflow Trainer's progress protocol (KEP-2779), so that trainer images
made for it report here unchanged: transformers' own KubeflowCallback (which
a Trainer adds by itself when KUBEFLOW_TRAINER_SERVER_URL is set), the
Kubeflow SDK's update_trainjob_status, or a plain HTTP client.

    POST /apis/trainer.kubeflow.org/v1alpha1/namespaces/{ns}/trainjobs/{name}/status
    Authorization: Bearer <the pod's projected token>
    {"trainerStatus": {"progressPercentage": 45, "estimatedRemainingSeconds": 795,
                       "metrics": [{"name": "loss", "value": "0.2347"}, ...],
                       "lastUpdatedTime": "..."}}

The controller gives each training pod KUBEFLOW_TRAINER_SERVER_URL (naming
its training as the TrainJob), KUBEFLOW_TRAINER_SERVER_TOKEN (the same
token file as TC_PROGRESS_TOKEN_FILE) and KUBEFLOW_TRAINER_SERVER_CA_CERT.
A report goes through the same checks as ReportProgress (progress_intake):
the pod's token names its training, and the URL must name the same one.

Where it differs from Kubeflow's server: plain HTTP on a port of its own
(Kubeflow serves HTTPS with its webhook's certificate); the token's audience
is this API's progress audience (Kubeflow's is trainer.kubeflow.org; the pod
never looks at it); and what is stored is a Progress: the metrics
current_step, total_steps and current_epoch (KubeflowCallback's) become its
step, total and epoch, loss and learning_rate their fields, other numbers
named metrics, and text values are left out.

A threaded HTTP server of the standard library serves it; each request is
handed to the API's event loop, where the intake and the store live.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from trainconductor.v1 import progress_pb2

from trainconductor_api.authentication.credentials import bearer_token
from trainconductor_api.authentication.errors import AuthenticatorUnavailable, Unauthenticated
from trainconductor_api.authentication.pod_binding import ReportRefused
from trainconductor_api.progress_intake import InvalidReport, ProgressIntake, RateLimited
from trainconductor_core.errors import (
    StoreFull,
    StoreUnavailable,
    TrainingFinished,
    TrainingNotFound,
)

log = logging.getLogger(__name__)

PATH = re.compile(
    r"^/apis/trainer\.kubeflow\.org/v1alpha1/namespaces/(?P<namespace>[a-z0-9-]{1,63})"
    r"/trainjobs/(?P<name>[a-z0-9-]{1,253})/status$"
)
MAX_BODY_BYTES = 64 * 1024
_ANSWER_SECONDS = 15.0
# KubeflowCallback's names for what has a field of its own.
_STEP, _TOTAL, _EPOCHS = "current_step", "total_steps", ("current_epoch", "epoch")
_FIELDS = {"loss": "loss", "learning_rate": "learning_rate"}
_SAMPLES = ("train_samples_per_second",)
_TOKENS = ("train_tokens_per_second",)


class BadStatus(ValueError):
    """A body that is not a trainerStatus this API can read."""


def progress_of(body: Any) -> progress_pb2.Progress:
    """The Progress a `{"trainerStatus": ...}` body says. Pure."""
    if not isinstance(body, dict) or not isinstance(body.get("trainerStatus"), dict):
        raise BadStatus("the body must be a JSON object with a trainerStatus object")
    status = body["trainerStatus"]
    progress = progress_pb2.Progress()
    percent = status.get("progressPercentage")
    if percent is not None:
        if not isinstance(percent, int | float) or isinstance(percent, bool):
            raise BadStatus("trainerStatus.progressPercentage must be a number")
        progress.percent = float(percent)
    remaining = status.get("estimatedRemainingSeconds")
    if remaining is not None:
        if not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 0:
            raise BadStatus("trainerStatus.estimatedRemainingSeconds must be a whole number >= 0")
        progress.eta.FromSeconds(remaining)
    metrics = status.get("metrics") or []
    if not isinstance(metrics, list):
        raise BadStatus("trainerStatus.metrics must be a list of {name, value}")
    for metric in metrics:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            raise BadStatus("each of trainerStatus.metrics must be a {name, value} object")
        name, value = metric["name"], _number(metric.get("value"))
        if value is None:
            continue  # a text value: nothing to show as a number
        if name == _STEP:
            progress.step = int(value)
        elif name == _TOTAL:
            progress.total_steps = int(value)
        elif name in _EPOCHS:
            progress.epoch = value
        elif name in _FIELDS:
            setattr(progress, _FIELDS[name], value)
        elif name in _SAMPLES:
            progress.samples_per_second = value
        elif name in _TOKENS:
            progress.tokens_per_second = value
        elif math.isfinite(value):
            progress.metrics[name] = value
    return progress


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class KubeflowStatusServer:
    """The endpoint, on `port`, answering through `intake` on `loop`."""

    def __init__(
        self, host: str, port: int, intake: ProgressIntake, loop: asyncio.AbstractEventLoop
    ) -> None:
        handler = _handler(intake, loop)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kubeflow-status", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("serving Kubeflow Trainer's progress protocol", extra={"port": self.port})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(
    intake: ProgressIntake, loop: asyncio.AbstractEventLoop
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "train-conductor"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the access is logged below, without the token

        def do_POST(self) -> None:
            match = PATH.fullmatch(self.path)
            if match is None:
                self._answer(HTTPStatus.NOT_FOUND, _status(404, "NotFound", "no such endpoint"))
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY_BYTES:
                self._answer(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length else HTTPStatus.BAD_REQUEST,
                    _status(400, "BadRequest", f"a body of 1 to {MAX_BODY_BYTES} bytes is needed"),
                )
                return
            raw = self.rfile.read(length)
            code, answer = self._report(match["name"], raw)
            self._answer(code, answer)

        def _report(self, name: str, raw: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
            try:
                progress = progress_of(json.loads(raw))
                header = self.headers.get("Authorization")
                token = bearer_token(header) if header else None
                future = asyncio.run_coroutine_threadsafe(_record(token, name, progress), loop)
                recorded = future.result(_ANSWER_SECONDS)
            except (BadStatus, ValueError) as err:
                return HTTPStatus.BAD_REQUEST, _status(400, "BadRequest", str(err))
            except InvalidReport as err:
                return HTTPStatus.UNPROCESSABLE_ENTITY, _status(422, "Invalid", str(err))
            except Unauthenticated as err:
                return HTTPStatus.UNAUTHORIZED, _status(401, "Unauthorized", str(err))
            except ReportRefused as err:
                return HTTPStatus.FORBIDDEN, _status(403, "Forbidden", str(err))
            except RateLimited as err:
                return HTTPStatus.TOO_MANY_REQUESTS, _status(429, "TooManyRequests", str(err))
            except TrainingNotFound as err:
                return HTTPStatus.NOT_FOUND, _status(404, "NotFound", str(err))
            except TrainingFinished as err:
                return HTTPStatus.CONFLICT, _status(409, "Conflict", str(err))
            except (AuthenticatorUnavailable, StoreUnavailable, StoreFull, TimeoutError):
                return HTTPStatus.SERVICE_UNAVAILABLE, _status(
                    503, "ServiceUnavailable", "progress can not be recorded now; retry shortly"
                )
            except Exception:
                log.exception("a Kubeflow status report failed")
                return HTTPStatus.INTERNAL_SERVER_ERROR, _status(
                    500, "InternalError", "internal error; the server logged the details"
                )
            body = json.loads(json_format.MessageToJson(recorded))
            return HTTPStatus.OK, {"trainerStatus": _trainer_status(recorded), "progress": body}

        def _answer(self, code: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            log.info("kubeflow status report", extra={"status": int(code)})

    async def _record(token: str | None, name: str, progress: progress_pb2.Progress) -> Any:
        training_id = await intake.training_of(token, name, "trainjobs/{name}")
        return (await intake.record(training_id, progress)).progress

    return Handler


def _trainer_status(progress: progress_pb2.Progress) -> dict[str, Any]:
    status: dict[str, Any] = {"progressPercentage": int(progress.percent)}
    if progress.HasField("eta"):
        status["estimatedRemainingSeconds"] = progress.eta.seconds
    status["lastUpdatedTime"] = progress.report_time.ToJsonString()
    return status


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    """An answer shaped as the Kubernetes API's metav1.Status, as Kubeflow's."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
