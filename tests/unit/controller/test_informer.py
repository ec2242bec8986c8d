"""What a watch event does to the cache, and which events reconcile."""

from __future__ import annotations

import copy
from typing import Any, cast

from trainconductor_controller.informer import Informer, training_id_of
from trainconductor_controller.kube import Kube
from trainconductor_controller.names import TRAINING_ID_LABEL
from trainconductor_controller.objects import Pod, slim_pod

ID = "0193a1b2c3d4e5f60718"


def pod_event(version: str, phase: str = "Running", **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "train-pod",
            "resourceVersion": version,
            "labels": {TRAINING_ID_LABEL: ID},
            "managedFields": [{"manager": "kubelet", "time": f"2027-01-15T08:00:0{version}Z"}],
            **metadata,
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "trainer"}]},
        "status": {"phase": phase},
    }


def pods_informer() -> tuple[Informer[Pod], list[str]]:
    changed: list[str] = []
    # The watch is not started: events are handed to it as the watch would.
    informer = Informer(
        cast(Kube, None), "pods", changed.append, key_of=training_id_of, slim=slim_pod
    )
    return informer, changed


def test_an_update_of_what_the_controller_does_not_read_reconciles_nothing() -> None:
    informer, changed = pods_informer()
    informer.apply("ADDED", pod_event("1", finalizers=["batch.kubernetes.io/job-tracking"]))
    # The Job controller takes its finalizer off: a new version, the same pod.
    informer.apply("MODIFIED", pod_event("2"))
    informer.apply("MODIFIED", pod_event("3", annotations={"note": "x"}))

    assert changed == [ID]
    assert [p["status"]["phase"] for p in informer.get(ID)] == ["Running"]


def test_a_change_of_what_the_controller_reads_reconciles_once_each() -> None:
    informer, changed = pods_informer()
    informer.apply("ADDED", pod_event("1", phase="Pending"))
    informer.apply("MODIFIED", pod_event("2", phase="Running"))
    deleting = pod_event("3", phase="Running", deletionTimestamp="2027-01-15T08:00:09Z")
    informer.apply("MODIFIED", deleting)
    informer.apply("DELETED", copy.deepcopy(deleting))

    assert changed == [ID] * 4
    assert informer.get(ID) == []
