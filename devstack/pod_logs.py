"""Pod logs on the local control plane. kwok stands in for kubelets and
serves a pod's log from a file, in the format container runtimes write (CRI:
`<RFC 3339 time> stdout F <text>`): the file of the Logs object named after
the pod, else that of the cluster's ClusterLogs (every pod's few lines).
kwok follows such a file for as long as a client reads it: it knows no
container that could end, so a follow ends only when the reader stops.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from kubernetes import client

KWOK_GROUP = "kwok.x-k8s.io"
KWOK_VERSION = "v1alpha1"
DEFAULT_LINES = ("trainer: starting", "trainer: done")


def cri_line(text: str, when: datetime.datetime | None = None) -> str:
    """One line as a container runtime writes it to a pod's log file."""
    when = when or datetime.datetime.now(datetime.UTC)
    stamp = when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{stamp}000Z stdout F {text}\n"


def write_default_pod_log(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    path.write_text("".join(cri_line(text, when) for text in DEFAULT_LINES))


class PodLog:
    """A pod's log file, written line by line as its container would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def write(self, *lines: str) -> None:
        with self.path.open("a") as f:
            f.write("".join(cri_line(text) for text in lines))


def serve_pod_log(kube: client.ApiClient, namespace: str, pod: str, log: PodLog) -> None:
    """Has kwok serve `log` as the log of every container of the pod."""
    body = {
        "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"logs": [{"logsFile": str(log.path), "follow": True}]},
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        KWOK_GROUP, KWOK_VERSION, namespace, "logs", body
    )
