"""Where a queued training stands in its Kueue queue, from the Workload
Kueue made for its Job. Pure.

Kueue decides who runs next; this says it in our words: waiting for quota
(in Kueue's own), its queue unavailable, held, preempted and by what, queued
again after a backoff and until when. Once Kueue admitted the Workload, the
Job and its pods tell the rest (observe.py).

Kueue's conditions of a Workload, as v0.17 sets them:
- QuotaReserved False, reason Pending: waits for quota; the message says
  what is short. Reason Inadmissible: its LocalQueue or ClusterQueue does
  not exist or is stopped. Under StrictFIFO a Workload behind the head may
  have no condition at all: its place comes from the visibility API only.
- QuotaReserved True, then Admitted True: admitted; Kueue unsuspends the Job.
- Evicted True (reason Preempted, with Preempted True saying why:
  InClusterQueue, InCohortReclamation, ...; or Deactivated, PodsReadyTimeout,
  ClusterQueueStopped, ...): stopping while QuotaReserved is still True;
  then QuotaReserved False and Requeued True: back in the queue, possibly
  with status.requeueState.requeueAt (a backoff). Evicted and Preempted go
  False at the next admission.
- spec.active false: deactivated (held by us, or by Kueue after too many
  requeues).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from trainconductor_controller.names import JOB_UID_LABEL
from trainconductor_controller.objects import Job, Workload, WorkloadCondition
from trainconductor_controller.observe import parse_time_ms
from trainconductor_core.phases import Phase

WAITING_FOR_QUOTA = "WaitingForQuota"
QUEUE_UNAVAILABLE = "QueueUnavailable"
WAITING_FOR_WORKLOAD = "WaitingForWorkload"
REQUEUE_BACKOFF = "RequeueBackoff"
PRIORITY_UNAVAILABLE = "PriorityUnavailable"
HELD = "Held"
PREEMPTED = "Preempted"
# The reasons of a training that waits in its queue, not yet admitted.
WAITING_REASONS = frozenset(
    {
        WAITING_FOR_QUOTA,
        QUEUE_UNAVAILABLE,
        WAITING_FOR_WORKLOAD,
        REQUEUE_BACKOFF,
        PRIORITY_UNAVAILABLE,
    }
)


@dataclass(frozen=True)
class Standing:
    phase: Phase
    reason: str
    message: str
    # Waits for quota in its queue: its place there means something.
    waiting: bool = False
    # Kueue's reason and message of a preemption not yet followed by a new
    # admission (its Workload is back in the queue, or stopping).
    preempted: tuple[str, str] | None = None


def condition(workload: Workload, kind: str) -> WorkloadCondition | None:
    for c in workload.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def _true(workload: Workload, kind: str) -> WorkloadCondition | None:
    found = condition(workload, kind)
    return found if found is not None and found.get("status") == "True" else None


def _said(c: WorkloadCondition | None, otherwise: str) -> str:
    return (c.get("message") if c else None) or otherwise


def _preemption(workload: Workload) -> tuple[str, str] | None:
    """Kueue's reason and message of a preemption of the Workload not yet
    followed by a new admission."""
    evicted = _true(workload, "Evicted")
    if evicted is None or evicted.get("reason") != PREEMPTED:
        return None
    preempted = _true(workload, "Preempted")
    reason = (preempted or {}).get("reason") or PREEMPTED
    return reason, _said(preempted, _said(evicted, "preempted to make room"))


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def standing(
    workload: Workload | None,
    *,
    queue: str,
    held: bool,
    job_suspended: bool,
    now_ms: int,
    missing_priority: str = "",
) -> Standing | None:
    """Where the training stands in `queue`; None once Kueue admitted it
    and its Job runs (the Job and its pods tell the rest).

    `workload`: Kueue's Workload of the training's Job, None while none is
    known (Kueue has not made it yet, or its cache has not seen it);
    `held`: its owner asked to hold it; `job_suspended`: the Job's
    spec.suspend, which stays true until Kueue admits it;
    `missing_priority`: the WorkloadPriorityClass the Job names, when it is
    known not to exist (Kueue makes no Workload for the Job until it does)."""
    if held:
        return Standing(
            Phase.SUSPENDED,
            HELD,
            f"held by its owner, out of queue {queue} and holding no quota; release it to "
            "queue it again",
        )
    if workload is None:
        if not job_suspended:
            return None
        if missing_priority:
            return Standing(
                Phase.QUEUED,
                PRIORITY_UNAVAILABLE,
                f"priority {missing_priority} does not exist (no WorkloadPriorityClass "
                f"{missing_priority}): Kueue queues its Job in {queue} once it is made; or "
                "cancel it and submit it with another priority",
                waiting=True,
            )
        return Standing(
            Phase.QUEUED,
            WAITING_FOR_WORKLOAD,
            f"waiting for Kueue to take up its Job in queue {queue}",
            waiting=True,
        )
    if _true(workload, "Finished"):
        return None
    evicted = _true(workload, "Evicted")
    if workload.get("spec", {}).get("active") is False:
        return Standing(
            Phase.SUSPENDED,
            "Deactivated",
            f"Kueue took it out of queue {queue}: "
            + _said(evicted, "its Workload was deactivated"),
        )
    preempted = _preemption(workload)
    reserved = _true(workload, "QuotaReserved")
    if evicted and reserved:
        # Evicted, its pods stopping; its quota is released once they are gone.
        if preempted:
            reason, message = preempted
            return Standing(
                Phase.SUSPENDED,
                PREEMPTED,
                f"preempted by Kueue ({reason}): {message}; its pods are stopping, and it "
                f"waits in queue {queue} again",
                preempted=preempted,
            )
        return Standing(
            Phase.SUSPENDED,
            "Evicted",
            f"evicted by Kueue ({evicted.get('reason') or 'Evicted'}): "
            f"{_said(evicted, 'its quota was taken back')}; its pods are stopping",
        )
    if reserved:
        cluster_queue = workload.get("status", {}).get("admission", {}).get("clusterQueue", "")
        where = f" in ClusterQueue {cluster_queue}" if cluster_queue else ""
        if not _true(workload, "Admitted"):
            return Standing(
                Phase.QUEUED,
                "WaitingForAdmissionChecks",
                f"quota reserved{where}; waiting for its admission checks",
            )
        if job_suspended:
            return Standing(Phase.QUEUED, "Admitted", f"admitted by Kueue{where}; its Job starts")
        return None
    pending = condition(workload, "QuotaReserved")
    if pending is not None and pending.get("reason") == "Inadmissible":
        return Standing(
            Phase.QUEUED,
            QUEUE_UNAVAILABLE,
            f"queue {queue} is not available: {_said(pending, 'Kueue can not admit to it')}",
            waiting=True,
            preempted=preempted,
        )
    requeue = workload.get("status", {}).get("requeueState") or {}
    requeue_at = parse_time_ms(requeue.get("requeueAt"))
    if requeue_at is not None and requeue_at > now_ms:
        why = f" ({evicted.get('reason')})" if evicted and evicted.get("reason") else ""
        count = requeue.get("count")
        attempt = f", its requeue number {count}" if count else ""
        return Standing(
            Phase.QUEUED,
            REQUEUE_BACKOFF,
            f"evicted{why} and queued again in {queue} after a backoff: Kueue tries it again "
            f"at {_when(requeue_at)}{attempt}",
            preempted=preempted,
        )
    return Standing(
        Phase.QUEUED,
        WAITING_FOR_QUOTA,
        _said(pending, f"waiting in queue {queue} for Kueue to consider it"),
        waiting=True,
        preempted=preempted,
    )


def workload_of(job: Job, workloads: list[Workload]) -> Workload | None:
    """Kueue's Workload of this very Job, found by the job-uid label (or,
    without it, its owner): a Workload of an earlier Job of the same name,
    not yet collected, is not this Job's."""
    uid = job.get("metadata", {}).get("uid", "")
    for workload in workloads:
        metadata = workload.get("metadata", {})
        owners = {o.get("uid") for o in metadata.get("ownerReferences") or []}
        if uid and (metadata.get("labels", {}).get(JOB_UID_LABEL) == uid or uid in owners):
            return workload
    return None
