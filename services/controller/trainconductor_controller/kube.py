"""The Kubernetes calls the controller makes, timed and counted, with
failures as the project's own errors. Objects stay plain dicts (the JSON
the API server sent): cheaper than the client's models at 10,000 Jobs.

`AlreadyExists` on create and `NotFound` on delete or patch are outcomes,
not errors.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from trainconductor_controller import metrics
from trainconductor_controller.errors import Gone, KubernetesError
from trainconductor_controller.names import (
    CONTAINER_NAME,
    DEADLINE_FROM_ANNOTATION,
    MANAGED_SELECTOR,
)
from trainconductor_controller.objects import RawObject
from trainconductor_core.kept_logs import last_lines

# What the controller lists and watches: its Jobs and their pods, by label;
# the Job controller's FailedCreate events, the only place Kubernetes
# tells that a Job's pod was refused (by a quota, a LimitRange, an admission
# policy): no Job or pod status carries it; and, with queues, Kueue's
# Workloads of the namespace (Kueue copies none of a Job's labels onto its
# Workload: which are ours is told by their owner, informer.py).
_SELECTORS: dict[str, dict[str, str]] = {
    "jobs": {"label_selector": MANAGED_SELECTOR},
    "pods": {"label_selector": MANAGED_SELECTOR},
    "services": {"label_selector": MANAGED_SELECTOR},
    "events": {"field_selector": "involvedObject.kind=Job,reason=FailedCreate"},
    "workloads": {},
}
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta2"
VISIBILITY_GROUP = "visibility.kueue.x-k8s.io"


def api_client(kubeconfig: str | None, *, connections: int = 16) -> client.ApiClient:
    """A client from the kubeconfig, or the pod's service account when None.

    `connections` sizes the connection pool: each worker and each watch holds
    one while it talks to the API server, and a smaller pool makes them queue.
    """
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def post_manifest(
    api: client.ApiClient, path: str, manifest: RawObject, timeout: float
) -> urllib3.HTTPResponse:
    """POSTs the manifest as it is; the raw response, its body unread. The
    client's typed create methods first rebuild a dict as their pydantic
    models (validate_call), and a burst of creations is bounded by the
    controller's CPU (docs/performance.md)."""
    method, url, headers, _, _ = api.param_serialize(
        "POST",
        path,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, headers, body=manifest, _request_timeout=timeout)
    if not 200 <= response.status < 300:
        response.data = response.response.data
        raise ApiException(http_resp=response)
    raw: urllib3.HTTPResponse = response.response
    return raw


class Kube:
    def __init__(
        self, api: client.ApiClient, namespace: str, *, timeout_seconds: float = 10
    ) -> None:
        self.api = api
        self.namespace = namespace
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._timeout = timeout_seconds

    @contextmanager
    def _call(self, verb: str, resource: str) -> Iterator[None]:
        start = time.perf_counter()
        code = "0"
        try:
            yield
            code = "200"
        except ApiException as err:
            code = str(err.status or 0)
            cls = Gone if err.status == 410 else KubernetesError
            raise cls(verb, resource, err.status or 0, _why(err)) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise KubernetesError(verb, resource, 0, type(err).__name__) from err
        finally:
            metrics.KUBE_REQUESTS.labels(verb, resource, code).inc()
            metrics.KUBE_REQUEST_SECONDS.labels(verb, resource).observe(time.perf_counter() - start)

    def _call_unless(
        self, verb: str, outcome: int, call: Callable[[], object], resource: str = "jobs"
    ) -> bool:
        """Makes the call; False when the API server answered `outcome`."""
        try:
            with self._call(verb, resource):
                response = call()
                if isinstance(response, urllib3.HTTPResponse):
                    # Not preloaded, the body is left unread and the
                    # connection never goes back to the pool: every call
                    # would open (and handshake) a new one.
                    response.drain_conn()
                    response.release_conn()
        except KubernetesError as err:
            if err.status == outcome:
                return False
            raise
        return True

    def create_job(self, manifest: RawObject) -> bool:
        """Creates the Job; False when it already existed (a repeat after a crash)."""
        return self._call_unless(
            "create",
            409,
            lambda: self._post(f"/apis/batch/v1/namespaces/{self.namespace}/jobs", manifest),
        )

    def create_service(self, manifest: RawObject) -> bool:
        """Creates the Service; False when it already existed."""
        return self._call_unless(
            "create",
            409,
            lambda: self._post(f"/api/v1/namespaces/{self.namespace}/services", manifest),
            resource="services",
        )

    def _post(self, path: str, manifest: RawObject) -> urllib3.HTTPResponse:
        return post_manifest(self.api, path, manifest, self._timeout)

    def delete_job(self, name: str) -> bool:
        """Deletes the Job and (in the background) its pods; False when it was gone."""
        return self._call_unless(
            "delete",
            404,
            lambda: self._batch.delete_namespaced_job(
                name,
                self.namespace,
                propagation_policy="Background",
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
        )

    def set_job_deadline(self, name: str, seconds: int | None, counted_from: str) -> bool:
        """Sets the Job's activeDeadlineSeconds (None removes it) and notes
        the startTime it counts from; False when the Job was gone."""
        patch = {
            "metadata": {"annotations": {DEADLINE_FROM_ANNOTATION: counted_from}},
            "spec": {"activeDeadlineSeconds": seconds},
        }
        return self._call_unless(
            "patch",
            404,
            lambda: self._batch.patch_namespaced_job(
                name,
                self.namespace,
                patch,
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
        )

    def set_workload_active(self, name: str, active: bool) -> bool:
        """Sets the Workload's spec.active (false: out of its queue, its
        quota freed; true: back in); False when the Workload was gone."""
        return self._call_unless(
            "patch",
            404,
            lambda: self._custom.patch_namespaced_custom_object(
                KUEUE_GROUP,
                KUEUE_VERSION,
                self.namespace,
                "workloads",
                name,
                {"spec": {"active": active}},
                _content_type="application/merge-patch+json",
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
            resource="workloads",
        )

    def workload_priority_classes(self) -> set[str]:
        """The names of Kueue's WorkloadPriorityClasses (cluster-wide)."""
        with self._call("list", "workloadpriorityclasses"):
            found = cast(
                RawObject,
                self._custom.list_cluster_custom_object(
                    KUEUE_GROUP,
                    KUEUE_VERSION,
                    "workloadpriorityclasses",
                    _request_timeout=self._timeout,
                ),
            )
        return {str(item["metadata"]["name"]) for item in found.get("items") or []}

    def pending_workloads(self, local_queue: str, *, limit: int = 1000) -> list[RawObject]:
        """The Workloads waiting in the LocalQueue, in its order, from
        Kueue's visibility API (each with `positionInLocalQueue`, from 0):
        its first `limit`."""
        path = (
            f"/apis/{VISIBILITY_GROUP}/{KUEUE_VERSION}/namespaces/{self.namespace}"
            f"/localqueues/{local_queue}/pendingworkloads"
        )
        with self._call("get", "pendingworkloads"):
            method, url, headers, _, _ = self.api.param_serialize(
                "GET",
                path,
                query_params=[("limit", str(limit))],
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(method, url, headers, _request_timeout=self._timeout)
            if not 200 <= response.status < 300:
                response.data = response.response.data
                raise ApiException(http_resp=response)
            body = json.loads(response.response.data)
        items: list[RawObject] = body.get("items") or []
        return items

    def read_log_end(self, pod: str, limit_bytes: int) -> tuple[bytes, bool] | None:
        """The end of the trainer's log in the pod, with timestamps: its last
        whole lines that fit in `limit_bytes`, and whether lines before them
        were left out; None when it has none (its trainer never started, or
        the pod is gone). Holds at most twice the limit while it reads."""
        try:
            with self._call("get", "pods/log"):
                response = cast(
                    urllib3.HTTPResponse,
                    self._core.read_namespaced_pod_log(
                        pod,
                        self.namespace,
                        container=CONTAINER_NAME,
                        timestamps=True,
                        # Enough of the shortest lines (a timestamp and a
                        # line break) to fill the limit, and no more.
                        tail_lines=limit_bytes // 32 + 1,
                        _preload_content=False,
                        _request_timeout=self._timeout,
                    ),
                )
        except KubernetesError as err:
            if err.status in (400, 404):
                return None
            raise
        buffer = bytearray()
        lines = 0
        try:
            with self._call("get", "pods/log"):
                for chunk in response.stream(64 * 1024):
                    lines += chunk.count(b"\n")
                    buffer += chunk
                    if len(buffer) > 2 * limit_bytes:
                        del buffer[: len(buffer) - limit_bytes]
        finally:
            response.close()
        kept, cut = last_lines(bytes(buffer), limit_bytes)
        return kept, cut or lines > limit_bytes // 32

    def get_job(self, name: str) -> RawObject | None:
        try:
            with self._call("get", "jobs"):
                # Without preloading, the raw urllib3 response comes back, not a V1Job.
                response = cast(
                    urllib3.HTTPResponse,
                    self._batch.read_namespaced_job(
                        name, self.namespace, _preload_content=False, _request_timeout=self._timeout
                    ),
                )
        except KubernetesError as err:
            if err.status == 404:
                return None
            raise
        job: RawObject = json.loads(response.data)
        response.release_conn()  # read whole: the connection goes back to the pool
        return job

    def list(self, resource: str, *, page_size: int = 500) -> tuple[list[RawObject], str]:
        """Every object of `resource` the controller reads (`_SELECTORS`),
        paged; and the resourceVersion to watch from."""
        method = self._list_method(resource)
        items: list[RawObject] = []
        token: str | None = None
        while True:
            with self._call("list", resource):
                response = method(
                    self.namespace,
                    **_SELECTORS[resource],
                    limit=page_size,
                    _continue=token,
                    _preload_content=False,
                    _request_timeout=60,
                )
            body = json.loads(response.data)
            response.release_conn()
            items += body.get("items") or []
            token = body.get("metadata", {}).get("continue")
            if not token:
                return items, str(body["metadata"]["resourceVersion"])

    def watch(self, resource: str, resource_version: str, timeout_seconds: int) -> Any:
        """The raw streaming response of a watch (with bookmarks)."""
        method = self._list_method(resource)
        with self._call("watch", resource):
            return method(
                self.namespace,
                **_SELECTORS[resource],
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                _request_timeout=(10, timeout_seconds + 30),
            )

    def ping(self) -> None:
        with self._call("get", "version"):
            client.VersionApi(self.api).get_code(_request_timeout=5)

    def _list_method(self, resource: str) -> Any:
        if resource == "workloads":
            return functools.partial(self._list_custom, resource)
        return {
            "jobs": self._batch.list_namespaced_job,
            "pods": self._core.list_namespaced_pod,
            "services": self._core.list_namespaced_service,
            "events": self._core.list_namespaced_event,
        }[resource]

    def _list_custom(self, plural: str, namespace: str, **options: Any) -> Any:
        return self._custom.list_namespaced_custom_object(
            KUEUE_GROUP, KUEUE_VERSION, namespace, plural, **options
        )


def _why(err: ApiException) -> str:
    """The HTTP reason, and the message of the Status the API server sent
    back (what a quota or an admission webhook says), when there is one."""
    reason = str(err.reason or "")
    try:
        status = json.loads(err.body or b"")
    except (ValueError, TypeError):
        return reason
    message = status.get("message") if isinstance(status, dict) else None
    return f"{reason}: {message}" if isinstance(message, str) and message else reason
