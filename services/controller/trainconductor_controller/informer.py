"""List+watch of the managed Jobs, their pods, the refusals of their pods
and (with queues) Kueue's Workloads of them into an in-memory cache, by
training.

One thread per resource: list (paged), then watch from the list's
resourceVersion with bookmarks; a watch that times out resumes from the
last version seen, one that answers 410 Gone relists. Every change calls
`on_change(training_id)`, unless it left what the controller reads as it
was: objects are slimmed to that (objects.py), and an update of the rest
(a finalizer taken off, Kueue's bookkeeping) reconciles nothing.

A refusal is the Job controller's FailedCreate event on a Job: a quota, a
LimitRange or an admission policy refused the Job's pod. The Job's status
does not say so, and without it a training would wait with no reason given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import orjson
import urllib3
from kubernetes.watch.watch import iter_resp_lines

from trainconductor_controller import metrics
from trainconductor_controller.errors import Gone, KubernetesError
from trainconductor_controller.kube import Kube
from trainconductor_controller.names import TRAINING_ID_LABEL, training_id_of_job
from trainconductor_controller.objects import RawObject

log = logging.getLogger(__name__)

# What the cache keeps of an object: a Job, a Pod, a Refusal (objects.py).
T = TypeVar("T")


def training_id_of(obj: RawObject) -> str:
    """The training a Job or a pod belongs to, by its label; '' for none."""
    return str(obj.get("metadata", {}).get("labels", {}).get(TRAINING_ID_LABEL, ""))


def training_id_of_refusal(event: RawObject) -> str:
    """The training whose Job the event is on; '' for another Job."""
    return training_id_of_job(str(event.get("involvedObject", {}).get("name", "")))


def training_id_of_workload(workload: RawObject) -> str:
    """The training whose Job Kueue made the Workload for (its owner);
    '' for another's."""
    for owner in workload.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("kind") == "Job":
            return training_id_of_job(str(owner.get("name", "")))
    return ""


class Informer(Generic[T]):
    def __init__(
        self,
        kube: Kube,
        resource: str,
        on_change: Callable[[str], None],
        *,
        key_of: Callable[[RawObject], str],
        slim: Callable[[RawObject], T],
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
        self._by_training: dict[str, dict[str, T]] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self.healthy = False
        self._stop = threading.Event()

    # reads (any thread)

    def get(self, training_id: str) -> list[T]:
        with self._lock:
            return list(self._by_training.get(training_id, {}).values())

    def training_ids(self) -> list[str]:
        with self._lock:
            return list(self._by_training)

    def items(self) -> list[tuple[str, list[T]]]:
        """Every training's objects."""
        with self._lock:
            return [(key, list(objects.values())) for key, objects in self._by_training.items()]

    # the loop (its own thread)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=f"informer-{self.resource}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Nothing more is reported from here on; the thread ends at the
        watch's next event or its timeout. (Closing the stream from another
        thread would wait for the lock its blocked read holds.)"""
        self._stop.set()

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
        fresh: dict[str, dict[str, T]] = {}
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
            if self._stop.is_set():
                break
            self._on_change(key)
        log.info("listed", extra={"resource": self.resource, "count": len(items)})
        return version

    def _watch(self, version: str) -> str:
        response = self._kube.watch(self.resource, version, self._watch_timeout)
        self.healthy = True
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    break
                event = orjson.loads(line)
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
                self.apply(kind, obj)
        finally:
            response.release_conn()
        if not self._stop.is_set():
            metrics.WATCH_RESTARTS.labels(self.resource, "timeout").inc()
        return version

    def apply(self, kind: str, obj: RawObject) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) into the cache."""
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
                slim = self._slim(obj)
                if objects.get(name) == slim:
                    return
                objects[name] = slim
        if not self._stop.is_set():
            self._on_change(key)


def wait_synced(informers: Sequence[Informer[Any]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    return all(i.synced.wait(max(0.0, deadline - time.monotonic())) for i in informers)
