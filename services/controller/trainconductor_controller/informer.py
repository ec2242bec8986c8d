"""List+watch of the managed Jobs, their pods and the refusals of their
pods into an in-memory cache, by training.

One thread per resource: list (paged), then watch from the list's
resourceVersion with bookmarks; a watch that times out resumes from the
last version seen, one that answers 410 Gone relists. Every change calls
`on_change(training_id)`. Objects are slimmed to what the controller reads,
so 10,000 Jobs fit in little memory.

A refusal is the Job controller's FailedCreate event on a Job: a quota, a
LimitRange or an admission policy refused the Job's pod. The Job's status
does not say so, and without it a training would wait with no reason given.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes.watch.watch import iter_resp_lines

from trainconductor_controller import metrics
from trainconductor_controller.errors import Gone, KubernetesError
from trainconductor_controller.kube import Kube
from trainconductor_controller.names import (
    DEADLINE_FROM_ANNOTATION,
    TRAINING_ID_LABEL,
    training_id_of_job,
)

log = logging.getLogger(__name__)

Object = dict[str, Any]


def slim(obj: Object) -> Object:
    """Keeps what plan() and observe() read: names, deletion, status, a
    pod's node, a Job's deadline (and what it was counted from) and whether
    it is to be suspended."""
    metadata = obj.get("metadata", {})
    kept: Object = {
        "metadata": {
            k: metadata[k]
            for k in ("name", "labels", "deletionTimestamp", "creationTimestamp", "resourceVersion")
            if k in metadata
        },
        "status": obj.get("status", {}),
    }
    spec = obj.get("spec", {})
    spec = {k: spec[k] for k in ("nodeName", "activeDeadlineSeconds", "suspend") if spec.get(k)}
    if spec:
        kept["spec"] = spec
    counted_from = metadata.get("annotations", {}).get(DEADLINE_FROM_ANNOTATION)
    if counted_from:
        kept["metadata"]["annotations"] = {DEADLINE_FROM_ANNOTATION: counted_from}
    return kept


def training_id_of(obj: Object) -> str:
    return str(obj.get("metadata", {}).get("labels", {}).get(TRAINING_ID_LABEL, ""))


def slim_refusal(event: Object) -> Object:
    """Keeps what observe() reads of a FailedCreate event: what it said, and
    when it last said it (a repeated event counts up in one object)."""
    metadata = event.get("metadata", {})
    last = (
        (event.get("series") or {}).get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or metadata.get("creationTimestamp")
        or ""
    )
    return {
        "metadata": {k: metadata[k] for k in ("name", "resourceVersion") if k in metadata},
        "message": str(event.get("message") or "")[:1024],
        "lastTimestamp": last,
    }


def training_id_of_refusal(event: Object) -> str:
    return training_id_of_job(str(event.get("involvedObject", {}).get("name", "")))


class Informer:
    def __init__(
        self,
        kube: Kube,
        resource: str,
        on_change: Callable[[str], None],
        *,
        key_of: Callable[[Object], str] = training_id_of,
        slim: Callable[[Object], Object] = slim,
        watch_timeout_seconds: int = 300,
    ) -> None:
        """`key_of` gives the training an object belongs to ('' for none of
        ours); `slim` what the cache keeps of it."""
        self._kube = kube
        self.resource = resource
        self._on_change = on_change
        self._key_of = key_of
        self._slim = slim
        self._watch_timeout = watch_timeout_seconds
        self._by_training: dict[str, dict[str, Object]] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self.healthy = False
        self._stop = threading.Event()
        self._response: Any = None

    # reads (any thread)

    def get(self, training_id: str) -> list[Object]:
        with self._lock:
            return list(self._by_training.get(training_id, {}).values())

    def training_ids(self) -> list[str]:
        with self._lock:
            return list(self._by_training)

    # the loop (its own thread)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=f"informer-{self.resource}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.close()

    def _run(self) -> None:
        version: str | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._relist()
                version = self._watch(version)
                failures = 0
            except Gone:
                metrics.WATCH_RESTARTS.labels(self.resource, "gone").inc()
                log.info("watch expired (410 Gone); relisting", extra={"resource": self.resource})
                version = None
            except (KubernetesError, OSError, ValueError, urllib3.exceptions.HTTPError) as err:
                # The cache keeps its last contents: unknown is not empty.
                self.healthy = False
                failures += 1
                metrics.WATCH_RESTARTS.labels(self.resource, "error").inc()
                delay = min(0.2 * 2**failures, 10.0)
                log.warning(
                    "watch failed; retrying",
                    extra={"resource": self.resource, "error": str(err)[:200], "retry_in": delay},
                )
                self._stop.wait(delay)

    def _relist(self) -> str:
        items, version = self._kube.list(self.resource)
        fresh: dict[str, dict[str, Object]] = {}
        for item in items:
            key = self._key_of(item)
            if key:
                fresh.setdefault(key, {})[item["metadata"]["name"]] = self._slim(item)
        with self._lock:
            changed = set(self._by_training) | set(fresh)
            self._by_training = fresh
        self.healthy = True
        self.synced.set()
        for key in changed:
            self._on_change(key)
        log.info("listed", extra={"resource": self.resource, "count": len(items)})
        return version

    def _watch(self, version: str) -> str:
        response = self._kube.watch(self.resource, version, self._watch_timeout)
        self._response = response
        self.healthy = True
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    break
                event = json.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone("watch", self.resource, 410, obj.get("message", ""))
                    raise KubernetesError(
                        "watch", self.resource, int(obj.get("code", 0)), obj.get("message", "")
                    )
                version = obj["metadata"]["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                self._apply(kind, obj)
        finally:
            self._response = None
            response.release_conn()
        if not self._stop.is_set():
            metrics.WATCH_RESTARTS.labels(self.resource, "timeout").inc()
        return version

    def _apply(self, kind: str, obj: Object) -> None:
        key = self._key_of(obj)
        if not key:
            return
        name = obj["metadata"]["name"]
        with self._lock:
            objects = self._by_training.setdefault(key, {})
            if kind == "DELETED":
                objects.pop(name, None)
                if not objects:
                    del self._by_training[key]
            else:
                objects[name] = self._slim(obj)
        self._on_change(key)


def wait_synced(informers: list[Informer], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    return all(i.synced.wait(max(0.0, deadline - time.monotonic())) for i in informers)
