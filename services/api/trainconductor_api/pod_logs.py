"""The trainings' pods and their logs, read from Kubernetes.

The Kubernetes client is synchronous: each call runs on a thread of a pool
of this module's own, sized to the log streams the API serves at once, so
that reading logs never takes the threads other work needs (the default
executor that TokenReview uses). A read of a followed log blocks until the
pod writes; it gives up after `read_timeout_seconds` of quiet, so a thread
is never held longer than that by a client that went away.

The `kubernetes` package is imported only when logs are read from a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from trainconductor_api.authentication.token_review import kubernetes_client
from trainconductor_api.settings import ApiSettings

log = logging.getLogger(__name__)

# As the controller labels a training's Job and pods (its names.py), and as
# the Job controller labels the pods of an Indexed Job with their rank.
TRAINING_ID_LABEL = "trainconductor.dev/training-id"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
# Each attempt of a training is a Job of its own: train-<id>, then
# train-<id>-a2, -a3, ... (the controller's names.py); its pods carry its name.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
_ATTEMPT = re.compile(r"-a([1-9][0-9]*)$")
CONTAINER_NAME = "trainer"
_CHUNK_BYTES = 64 * 1024
T = TypeVar("T")


class LogsUnavailable(Exception):
    """Kubernetes did not answer, or answered an error that a retry may not
    have: the stream ends UNAVAILABLE."""


@dataclass(frozen=True)
class TrainingPod:
    name: str
    rank: int
    # Its training's attempt, from 1.
    attempt: int
    # RFC 3339, as the API server writes it: sorts as time does.
    created: str
    # Its trainer ran or runs: it has a log.
    started: bool
    # Its trainer ended (or the pod is going away): its log grows no more.
    done: bool

    def order(self) -> tuple[int, str, str]:
        """Sorts a rank's pods in the order they ran."""
        return (self.attempt, self.created, self.name)


def training_pod(obj: dict[str, Any]) -> TrainingPod:
    """A pod as the API server sent it (JSON)."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    status = obj.get("status") or {}
    states = [
        c.get("state") or {}
        for c in status.get("containerStatuses") or []
        if c.get("name") == CONTAINER_NAME
    ]
    state = states[0] if states else {}
    phase = status.get("phase", "")
    try:
        rank = int(labels.get(COMPLETION_INDEX_LABEL, "0"))
    except ValueError:
        rank = 0
    attempt = _ATTEMPT.search(str(labels.get(JOB_NAME_LABEL, "")))
    return TrainingPod(
        name=str(metadata.get("name", "")),
        rank=rank,
        attempt=int(attempt[1]) if attempt else 1,
        created=str(metadata.get("creationTimestamp", "")),
        started="running" in state or "terminated" in state or phase in ("Succeeded", "Failed"),
        done=(
            phase in ("Succeeded", "Failed")
            or "terminated" in state
            or bool(metadata.get("deletionTimestamp"))
        ),
    )


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    # RFC 3339, whole seconds (what Kubernetes takes).
    since_time: str | None = None


class LogRead:
    """One open read of a pod's log."""

    def __init__(self, response: Any, run: Callable[..., Any], *, follow: bool) -> None:
        self._response = response
        self._run = run
        # A followed read hands on what has come, as it comes (read1: a few
        # KiB). A read that is not followed gets a log already written, to
        # its end, so it waits for whole pieces, as a client reading the log
        # itself does: each piece is a turn through a thread.
        self._follow = follow

    async def chunk(self) -> bytes | None:
        """The next bytes of the log; b"" when the log was quiet for the read
        timeout (the read is then over: open another); None at its end."""
        return await self._run(self._read)  # type: ignore[no-any-return]

    def _read(self) -> bytes | None:
        import urllib3  # here: only with logs read from a cluster

        try:
            if self._follow:
                data: bytes = self._response.read1(_CHUNK_BYTES)
            else:
                data = self._response.read(_CHUNK_BYTES)
        except urllib3.exceptions.ReadTimeoutError:
            return b""
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise LogsUnavailable(f"reading a pod's log: {type(err).__name__}") from None
        return data or None

    async def close(self) -> None:
        """Ends the read, its connection with it (a followed log's never
        ends: it can not go back to the pool). A read blocked on it in
        another thread returns at once."""
        with contextlib.suppress(RuntimeError):  # read to its end: released already
            self._response.shutdown()
        await self._run(self._response.close)


class KubernetesLogs:
    """Reads the trainings' pods and their logs in one namespace."""

    def __init__(
        self,
        api: Any,
        namespace: str,
        *,
        threads: int,
        read_timeout_seconds: float,
        request_timeout_seconds: float = 10,
    ) -> None:
        from kubernetes import client

        self._api = api
        self._core = client.CoreV1Api(api)
        self.namespace = namespace
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pod-logs")
        self._read_timeout = read_timeout_seconds
        self._timeout = request_timeout_seconds

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)

    async def pods(self, training_id: str) -> list[TrainingPod]:
        """The training's pods, every rank and attempt, oldest first."""
        body = await self._run(self._list_pods, training_id)
        pods = [training_pod(item) for item in body.get("items") or []]
        return sorted(pods, key=TrainingPod.order)

    def _list_pods(self, training_id: str) -> dict[str, Any]:
        response = self._call(
            lambda: self._core.list_namespaced_pod(
                self.namespace,
                label_selector=f"{TRAINING_ID_LABEL}={training_id}",
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
            "list pods",
        )
        return json.loads(response.data)  # type: ignore[no-any-return]

    async def pod(self, name: str) -> TrainingPod | None:
        """The pod as it is now; None when it is gone."""
        body = await self._run(self._call, lambda: self._read_pod(name), "read a pod")
        return None if body is None else training_pod(body)

    def _read_pod(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            response: Any = self._core.read_namespaced_pod(
                name, self.namespace, _preload_content=False, _request_timeout=self._timeout
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return json.loads(response.data)  # type: ignore[no-any-return]

    async def open(self, pod: str, query: LogQuery) -> LogRead | None:
        """A read of the pod's log with timestamps; None when it has none (its
        trainer has not started, or the pod is gone)."""
        response = await self._run(self._open, pod, query)
        return None if response is None else LogRead(response, self._run, follow=query.follow)

    def _open(self, pod: str, query: LogQuery) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        params: list[tuple[str, str]] = [
            ("container", CONTAINER_NAME),
            ("timestamps", "true"),
            ("follow", "true" if query.follow else "false"),
        ]
        if query.tail_lines is not None:
            params.append(("tailLines", str(query.tail_lines)))
        if query.since_time is not None:
            # Not in the generated client's arguments; Kubernetes takes it.
            params.append(("sinceTime", query.since_time))
        elif query.since_seconds is not None:
            params.append(("sinceSeconds", str(query.since_seconds)))
        method, url, headers, _, _ = self._api.param_serialize(
            "GET",
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            path_params={"namespace": self.namespace, "name": pod},
            query_params=params,
            header_params={"Accept": "*/*"},
            auth_settings=["BearerToken"],
        )
        try:
            answer = self._api.call_api(
                method, url, headers, _request_timeout=(self._timeout, self._read_timeout)
            )
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise LogsUnavailable(
                f"Kubernetes could not read a pod's log: {type(err).__name__}"
            ) from None
        response = answer.response
        if answer.status in (400, 404):
            # 400: its trainer has not started (or the pod is not scheduled
            # yet); 404: the pod is gone.
            response.close()
            return None
        if not 200 <= answer.status < 300:
            answer.data = response.data
            error = ApiException(http_resp=answer)
            log.warning(
                "Kubernetes refused to read a pod's log",
                extra={"status": error.status, "reason": str(error.reason or "")[:200]},
            )
            raise LogsUnavailable(f"Kubernetes could not read a pod's log: HTTP {answer.status}")
        return response

    def _call(self, call: Callable[[], Any], what: str) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return call()
        except ApiException as err:
            log.warning(
                "Kubernetes refused to %s",
                what,
                extra={"status": err.status, "reason": str(err.reason or "")[:200]},
            )
            raise LogsUnavailable(f"Kubernetes could not {what}: HTTP {err.status}") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise LogsUnavailable(f"Kubernetes could not {what}: {type(err).__name__}") from None

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def kubernetes_logs(settings: ApiSettings) -> KubernetesLogs:
    """Logs of the trainings' namespace, through the kubeconfig (or, without
    one, the pod's service account)."""
    api = kubernetes_client(settings)
    # A connection per stream reading at once, and a few for the listings.
    api.configuration.connection_pool_maxsize = settings.log_streams_max + 4
    return KubernetesLogs(
        api,
        settings.trainings_namespace,
        threads=settings.log_streams_max + 4,
        read_timeout_seconds=settings.log_poll_seconds,
    )
