"""Pods that run as long as a test needs on the local cluster's kwok nodes.

kwok completes a Job's running pod after the duration in its annotation
kwok.trainconductor.dev/run-duration, else after the cluster's short
default (devstack/stages.yaml). A training's pods carry no such annotation
(the controller copies nothing of the kind onto them), so a thread watches
the namespace's pods and annotates each as it is made, before kwok's
pod-complete stage reads it (the pod must first be scheduled and run)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

RUN_DURATION = "kwok.trainconductor.dev/run-duration"


@contextmanager
def pods_running_for(kube: client.ApiClient, namespace: str, duration: str) -> Iterator[None]:
    """While the block runs, every pod made in `namespace` runs `duration`
    (a Go duration, "45s") once started, unless annotated otherwise."""
    core = client.CoreV1Api(kube)
    stopping = threading.Event()

    def annotate(pod: client.V1Pod) -> None:
        annotations = pod.metadata.annotations or {}
        if RUN_DURATION in annotations or pod.metadata.deletion_timestamp:
            return
        try:
            core.patch_namespaced_pod(
                str(pod.metadata.name),
                namespace,
                {"metadata": {"annotations": {RUN_DURATION: duration}}},
            )
        except ApiException as error:
            if error.status != 404:  # gone already: nothing to run
                raise

    def run() -> None:
        while not stopping.is_set():
            # Each stream starts with every pod there is (ADDED), so a pod
            # made while the last one was being renewed is not missed.
            stream = watch.Watch()
            for event in stream.stream(core.list_namespaced_pod, namespace, timeout_seconds=5):
                if stopping.is_set():
                    stream.stop()
                    break
                if event["type"] in ("ADDED", "MODIFIED"):
                    annotate(event["object"])

    thread = threading.Thread(target=run, name="pods-running-for", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(timeout=10)
