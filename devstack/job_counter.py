"""Counts Job creations with a watch, to prove each training got one Job."""

from __future__ import annotations

import threading
import time
from collections import Counter

import urllib3
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
        self._stopped = threading.Event()
        self.error: BaseException | None = None
        api = client.BatchV1Api(kube)
        self._version = api.list_namespaced_job(namespace).metadata.resource_version
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Watches from the list's resourceVersion on. A connection the API
        server drops mid-stream (it does, under load) is watched again from
        the last version seen, so no creation is missed or counted twice; a
        version too old to resume from (410) is an error: creations could
        have been missed."""
        api = client.BatchV1Api(self._kube)
        while not self._stopped.is_set():
            try:
                for event in self._watch.stream(
                    api.list_namespaced_job,
                    self._namespace,
                    resource_version=self._version,
                    deserialize=False,
                    # Ends the stream instead of letting the client watch
                    # again by itself, from a version it does not track
                    # without deserializing: the loop here does that.
                    timeout_seconds=300,
                ):
                    if event is None:  # a line that was not JSON
                        continue
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"the Job watch failed: {event['object']}")
                    self._version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        name = event["object"]["metadata"]["name"]
                        self.created[name] += 1
                        self.first_seen.setdefault(name, time.monotonic())
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError):
                time.sleep(0.1)
            except BaseException as err:  # noqa: BLE001 - reported by the test
                self.error = err
                return

    def stop(self) -> Counter[str]:
        self._stopped.set()
        self._watch.stop()
        return self.created
