"""Keeps the end of each rank's log with a training as it finishes, so that
`tcctl logs` still shows why it failed once its Job and pods are gone (the
controller deletes them some time after; someone may sooner)."""

from __future__ import annotations

import asyncio
import logging

from trainconductor_controller.errors import KubernetesError
from trainconductor_controller.kube import Kube
from trainconductor_controller.names import COMPLETION_INDEX, JOB_NAME_LABEL, attempt_of_job
from trainconductor_controller.objects import Pod
from trainconductor_core.errors import StoreFull, StoreUnavailable
from trainconductor_core.kept_logs import KeptLog
from trainconductor_core.store import TrainingStore

log = logging.getLogger(__name__)

# Ranks whose logs are read at once: a large gang's in a few round trips,
# without taking every connection the controller's other calls need.
_READS_AT_ONCE = 8


def last_attempts(pods: list[Pod]) -> list[tuple[int, int, str]]:
    """(rank, attempt, pod) of each rank's newest pod: of the latest attempt
    (its Job's, by name), the last made."""
    newest: dict[int, tuple[int, str, str]] = {}
    for pod in pods:
        metadata = pod.get("metadata", {})
        labels = metadata.get("labels", {})
        try:
            rank = int(labels.get(COMPLETION_INDEX, "0"))
        except ValueError:
            rank = 0
        attempt = attempt_of_job(labels.get(JOB_NAME_LABEL, "")) or 1
        key = (attempt, metadata.get("creationTimestamp", ""), metadata.get("name", ""))
        newest[rank] = max(newest.get(rank, key), key)
    return [(rank, key[0], key[2]) for rank, key in sorted(newest.items())]


async def keep_logs(
    store: TrainingStore, kube: Kube, training_id: str, pods: list[Pod], limit_bytes: int
) -> None:
    """Best effort: a log that can not be read is told in the controller's
    log, and the training finishes all the same."""
    if limit_bytes <= 0:
        return
    gate = asyncio.Semaphore(_READS_AT_ONCE)

    async def end_of(rank: int, attempt: int, pod: str) -> KeptLog | None:
        async with gate:
            try:
                end = await asyncio.to_thread(kube.read_log_end, pod, limit_bytes)
            except KubernetesError as err:
                log.warning("the log of a finished pod could not be read", extra={
                    "pod": pod, "error": str(err)})  # fmt: skip
                return None
        if end is None:
            return None  # its trainer never started, or the pod is gone
        text, dropped = end
        return KeptLog(rank, attempt, pod, text.decode("utf-8", "replace"), dropped)

    ends = await asyncio.gather(*(end_of(*last) for last in last_attempts(pods)))
    kept = [end for end in ends if end is not None]
    try:
        await store.keep_logs(training_id, kept)
    except (StoreUnavailable, StoreFull) as err:
        # Full, Redis takes status writes still, not this: the training
        # finishes without its log's end rather than wait for memory.
        log.warning("the end of its log could not be kept", extra={"error": str(err)})
    else:
        if kept:
            log.info("the end of its log was kept", extra={"ranks": len(kept)})
