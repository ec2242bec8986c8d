"""Counts Job creations with a watch, to prove each training got one Job."""

from __future__ import annotations

import threading
import time
from collections import Counter

from kubernetes import client, watch


class JobCreations:
    """Every Job created in a namespace from now on: how many times each name
    was created, and when each was first seen (by this process's clock)."""

    def __init__(self, kube: client.ApiClient, namespace: str) -> None:
        self.created: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}
        self._kube = kube
        self._namespace = namespace
        self._watch = watch.Watch()
        self.error: BaseException | None = None
        api = client.BatchV1Api(kube)
        self._version = api.list_namespaced_job(namespace).metadata.resource_version
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        api = client.BatchV1Api(self._kube)
        try:
            for event in self._watch.stream(
                api.list_namespaced_job,
                self._namespace,
                resource_version=self._version,
                deserialize=False,
            ):
                if event["type"] == "ADDED":
                    name = event["object"]["metadata"]["name"]
                    self.created[name] += 1
                    self.first_seen.setdefault(name, time.monotonic())
        except BaseException as err:  # noqa: BLE001 - reported by the test
            self.error = err

    def stop(self) -> Counter[str]:
        self._watch.stop()
        return self.created
