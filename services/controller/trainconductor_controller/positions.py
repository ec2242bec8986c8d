"""The place of each waiting training in its Kueue LocalQueue, read from
Kueue's visibility API (`pendingworkloads` of the LocalQueue) at a bounded
rate: one call per queue with waiting trainings per round.

A training whose place changed is queued for a reconcile, which writes it
(plan.py writes a status only when something in it changed). A failed read
is unknown, not empty: the places last read are kept, and said again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from trainconductor_controller.admission import condition
from trainconductor_controller.errors import KubernetesError
from trainconductor_controller.informer import Informer, training_id_of_workload
from trainconductor_controller.kube import Kube
from trainconductor_controller.objects import Workload

log = logging.getLogger(__name__)


def waiting_queues(workloads: list[Workload]) -> set[str]:
    """The LocalQueues in which some of these Workloads wait for quota:
    active, not holding quota, not finished."""
    queues = set()
    for workload in workloads:
        if workload.get("spec", {}).get("active") is False:
            continue
        if any(
            (c := condition(workload, kind)) is not None and c.get("status") == "True"
            for kind in ("QuotaReserved", "Finished")
        ):
            continue
        queue = workload.get("spec", {}).get("queueName")
        if queue:
            queues.add(queue)
    return queues


class QueuePositions:
    def __init__(
        self,
        kube: Kube,
        workloads: Informer[Workload],
        enqueue: Callable[[str], None],
        *,
        every_seconds: float,
    ) -> None:
        """`workloads`: the Workload cache, which tells the queues with
        waiting trainings; `enqueue`: called with each training whose
        place changed."""
        self._kube = kube
        self._workloads = workloads
        self._enqueue = enqueue
        self._every = every_seconds
        # Queue to (training to its place, from 1).
        self._by_queue: dict[str, dict[str, int]] = {}
        self._places: dict[str, int] = {}

    def get(self, training_id: str) -> int:
        """Its place in its queue, from 1; 0 when it is not known to wait."""
        return self._places.get(training_id, 0)

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._every)

    async def refresh(self) -> None:
        """Reads the places in every queue with waiting trainings."""
        workloads = [w for _, found in self._workloads.items() for w in found]
        queues = waiting_queues(workloads)
        for queue in queues:
            try:
                items = await asyncio.to_thread(self._kube.pending_workloads, queue)
            except KubernetesError as err:
                log.warning(
                    "could not read queue positions; keeping the last ones",
                    extra={"queue": queue, "error": str(err)[:200]},
                )
                continue
            self._by_queue[queue] = {
                training_id: int(item.get("positionInLocalQueue", 0)) + 1
                for item in items
                if (training_id := training_id_of_workload(item))
            }
        for queue in set(self._by_queue) - queues:
            del self._by_queue[queue]  # nobody waits there any more
        places = {t: p for found in self._by_queue.values() for t, p in found.items()}
        changed = {
            t for t in set(places) | set(self._places) if places.get(t) != self._places.get(t)
        }
        self._places = places
        for training_id in changed:
            self._enqueue(training_id)
