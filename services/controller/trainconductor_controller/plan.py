"""What to do about one training: a pure function of what is wanted and
what is observed. No I/O, no clock of its own.

`job` is the Job of the training's current attempt (the record's
`attempts`, 1 before the first), and must be authoritative when it is None
for a training whose Job should exist: the reconciler confirms a cache miss
with a live read before calling this, so a Job that is merely not yet in the
cache is never taken for gone. `other_jobs` are its Jobs of other attempts,
which go.

A failed attempt is classified (failures.py): a disruption makes the next
attempt without spending a retry, a user's error fails the training at once,
anything else spends a retry or, with none left, fails it. The next attempt
is recorded first (its number, the retries spent and why, in one status
write), then its Job made: a crash in between makes the same Job on the next
reconcile, never a second one, and never loses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from trainconductor_controller.admission import (
    HELD,
    PREEMPTED,
    WAITING_FOR_QUOTA,
    Standing,
    standing,
)
from trainconductor_controller.failures import Cause, Failure, classify
from trainconductor_controller.jobs import nodes_of
from trainconductor_controller.names import DEADLINE_FROM_ANNOTATION, attempt_of_job, job_name
from trainconductor_controller.objects import Job, Pod, Refusal, Workload
from trainconductor_controller.observe import (
    Observed,
    created_ms,
    observe,
    parse_time_ms,
    refused_at_ms,
    trainer_starts_ms,
)
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate, TrainingRecord

# Reasons of a training between two attempts, and of one that failed as the
# user's error; Kubernetes' word for "failed more often than allowed" is kept
# for a training whose retries ran out.
RESTARTING = "Restarting"
USER_ERROR = "UserError"
RETRIES_EXHAUSTED = "BackoffLimitExceeded"


@dataclass(frozen=True)
class CreateJob:
    training: TrainingRecord
    attempt: int = 1


@dataclass(frozen=True)
class CreateService:
    """The headless Service of a multi-node attempt, owned by its Job."""

    training: TrainingRecord
    job_name: str
    job_uid: str


@dataclass(frozen=True)
class DeleteJob:
    name: str
    why: str  # "canceled", "finished" (kept long enough) or "orphan"


@dataclass(frozen=True)
class SetDeadline:
    """Sets the Job's activeDeadlineSeconds (None removes it), noting the
    Job startTime it counts from."""

    name: str
    seconds: int | None
    counted_from: str


@dataclass(frozen=True)
class SetWorkloadActive:
    """Takes the Workload out of its queue (False: Kueue evicts it and
    frees its quota) or puts it back (True), as `kueuectl stop/resume
    workload` do."""

    name: str
    active: bool


@dataclass(frozen=True)
class WriteStatus:
    update: StatusUpdate
    # When the status follows a failed attempt: its cause (failures.Cause).
    failed_attempt: str = ""


Action = CreateJob | CreateService | DeleteJob | SetDeadline | SetWorkloadActive | WriteStatus


def _deleting(job: Job) -> bool:
    return bool(job.get("metadata", {}).get("deletionTimestamp"))


def _update(
    desired: TrainingRecord, seen: Observed, name: str, queue_position: int = 0
) -> StatusUpdate:
    return StatusUpdate(
        observed_generation=desired.generation,
        phase=seen.phase,
        reason=seen.reason,
        message=seen.message,
        job_name=name,
        attempts=seen.attempts,
        conditions=seen.conditions,
        start_time_ms=seen.start_time_ms,
        finish_time_ms=seen.finish_time_ms,
        queue_position=queue_position,
        retries=desired.retries,
    )


def _differs(desired: TrainingRecord, update: StatusUpdate) -> bool:
    return (
        desired.observed_generation < update.observed_generation
        or desired.phase != update.phase
        or desired.reason != update.reason
        or desired.message != update.message
        or desired.job_name != update.job_name
        or desired.attempts != update.attempts
        or desired.retries != update.retries
        or desired.conditions != update.conditions
        or desired.queue_position != update.queue_position
        or (update.start_time_ms is not None and desired.start_time_ms is None)
        or (update.finish_time_ms is not None and desired.finish_time_ms != update.finish_time_ms)
    )


def _deadline(job: Job, pods: list[Pod], deadline_seconds: int) -> SetDeadline | None:
    """The change the Job's deadline needs. Kubernetes counts
    activeDeadlineSeconds from the Job's startTime; the training's deadline
    counts from its trainer's start, so the wait between is added once the
    trainer runs. A suspended Job that resumes gets a new startTime, and the
    count starts over: the deadline is then taken off until the trainer
    runs again."""
    job_start = job.get("status", {}).get("startTime")
    if not deadline_seconds or not job_start:
        return None  # no limit asked, or not started (or suspended)
    set_seconds = job.get("spec", {}).get("activeDeadlineSeconds")
    counted_from = job.get("metadata", {}).get("annotations", {}).get(DEADLINE_FROM_ANNOTATION)
    if set_seconds and counted_from is None:
        return None  # set at creation, by an earlier release: left as it was
    if set_seconds and counted_from == job_start:
        return None  # up to date
    job_start_ms = parse_time_ms(job_start) or 0
    if counted_from is not None:
        # Resumed: only the pods made since count (old ones may linger).
        # Both times are the control plane's; a start is the node's.
        pods = [p for p in pods if created_ms(p) >= job_start_ms]
    starts = trainer_starts_ms(pods)
    name = job["metadata"]["name"]
    if not starts:  # waiting (again)
        return SetDeadline(name, None, job_start) if set_seconds else None
    # Both times are kept to the second, cut down: the trainer may have
    # started up to a second after its startedAt. That second is its own.
    # (A node's clock behind the control plane's gives no wait, not less.)
    waited = max(math.ceil((min(starts) - job_start_ms) / 1000), 0) + 1
    return SetDeadline(name, deadline_seconds + waited, job_start)


def plan(
    desired: TrainingRecord | None,
    job: Job | None,
    pods: list[Pod],
    now_ms: int,
    *,
    keep_finished_ms: int,
    deadline_seconds: int = 0,
    refusals: list[Refusal] | None = None,
    workload: Workload | None = None,
    queue_position: int = 0,
    missing_priority: bool = False,
    other_jobs: Sequence[Job] = (),
    services: frozenset[str] | None = None,
    user_error_exit_codes: frozenset[int] = frozenset(),
    max_disruption_restarts: int = 20,
) -> list[Action]:
    """`keep_finished_ms`: how long a finished training's Job stays after it
    finished (and at least until its final status is recorded);
    `deadline_seconds`: how long the training may run once started (0: no
    limit); `refusals`: the FailedCreate events on the Job (its pod refused);
    for a training in a queue, `workload`: Kueue's Workload of its Job (None
    while none is known) and `queue_position`: its place in its queue from
    the visibility API, from 1 (0: not known); `missing_priority`: its
    WorkloadPriorityClass is known not to exist; `other_jobs`: its Jobs of
    other attempts; `services`: the names of its headless Services (None:
    not watched, none made); `user_error_exit_codes`: the trainer's exit
    codes that mean the user's error; `max_disruption_restarts`: restarts
    after disruptions that spend no retry."""
    if desired is None:
        # A Job with our label and no record is an orphan.
        return [
            DeleteJob(j["metadata"]["name"], "orphan")
            for j in ([job] if job is not None else []) + list(other_jobs)
            if not _deleting(j)
        ]

    # The current attempt's Job says which it is (one made before attempts
    # were counted as Jobs is the first, whatever the record counted).
    attempt = max(attempt_of_job(job["metadata"]["name"]) if job else desired.attempts, 1)
    name = job_name(desired.id, attempt)
    earlier: list[Action] = [
        DeleteJob(j["metadata"]["name"], "an earlier attempt")
        for j in other_jobs
        if not _deleting(j)
    ]
    if desired.phase.is_final:
        # Final phases never change; a canceled training's Jobs must be gone,
        # and a finished one's go once they have been kept long enough.
        jobs = [j for j in ([job] if job is not None else []) + list(other_jobs)]
        if desired.phase == Phase.CANCELED:
            why = "canceled"
        elif (
            desired.finish_time_ms is not None
            and now_ms - desired.finish_time_ms >= keep_finished_ms
        ):
            why = "finished"
        else:
            return []
        return [DeleteJob(j["metadata"]["name"], why) for j in jobs if not _deleting(j)]

    if refusals and desired.start_time_ms is not None:
        # Refusals from before its trainer first ran are history: a pod came
        # after them. (Its pods deleted at its deadline must not bring them back.)
        refusals = [r for r in refusals if refused_at_ms(r) > desired.start_time_ms]
    ran = desired.start_time_ms is not None
    nodes = nodes_of(desired.spec)
    seen = observe(job, pods, refusals, ran=ran, nodes=nodes) if job is not None else None
    if seen is not None:
        seen = replace(seen, attempts=attempt)
    if seen is not None and seen.phase.is_final:
        failure = None
        if seen.phase == Phase.FAILED and seen.reason != "DeadlineExceeded":
            failure = classify(
                pods,
                multi_node=nodes > 1,
                user_error_exit_codes=user_error_exit_codes,
                job_message=seen.message,
            )
        if failure is None:
            # Finished before the cancellation reached it: it stays as it finished.
            return [WriteStatus(_update(desired, seen, name)), *earlier]
        restarts_free = attempt - 1 - desired.retries  # after earlier disruptions
        if failure.cause == Cause.DISRUPTION and restarts_free >= max_disruption_restarts:
            failure = replace(
                failure,
                cause=Cause.RETRYABLE,
                what=f"{failure.what}, after {restarts_free} restarts for disruptions",
            )
        after = _after_failure(desired, seen, name, attempt, failure)
        if after.phase.is_final:
            return [WriteStatus(after, failure.cause.value), *earlier]
        if not desired.cancel_requested:
            # Recorded first: the next attempt is then made, once, even
            # across a crash (see the module's doc).
            assert job is not None
            return [
                WriteStatus(after, failure.cause.value),
                CreateJob(desired, attempt + 1),
                DeleteJob(name, "an earlier attempt"),
                *earlier,
            ]
        # Canceled while its attempt failed: no next one.

    if desired.cancel_requested:
        actions: list[Action] = list(earlier)
        if job is not None and not _deleting(job):
            actions.append(DeleteJob(name, "canceled"))
        canceled = StatusUpdate(
            observed_generation=desired.generation,
            phase=Phase.CANCELED,
            reason="Canceled",
            message="canceled on request; its Job and pods were deleted"
            if job is not None
            else "canceled on request before its Job was created",
            job_name=name if job is not None else desired.job_name,
            attempts=seen.attempts if seen else desired.attempts,
            conditions=seen.conditions if seen else desired.conditions,
            start_time_ms=seen.start_time_ms if seen else None,
            finish_time_ms=now_ms,
            retries=desired.retries,
        )
        return [*actions, WriteStatus(canceled)]

    if job is None:
        # Held before its Job was made: the Job waits for the release.
        never_made = desired.phase == Phase.PENDING or (
            desired.reason == HELD and not desired.job_name
        )
        if never_made and desired.held:
            held = StatusUpdate(
                observed_generation=desired.generation,
                phase=Phase.SUSPENDED,
                reason=HELD,
                message=f"held by its owner before its Job was made; release it to queue it "
                f"in {desired.queue}",
            )
            return [WriteStatus(held)] if _differs(desired, held) else []
        if never_made:
            created = StatusUpdate(
                observed_generation=desired.generation,
                phase=Phase.QUEUED,
                reason="JobCreated",
                message="the Job was created; waiting for its pod"
                if nodes == 1
                else f"the Job was created; waiting for its {nodes} pods",
                job_name=name,
                attempts=attempt,
                retries=desired.retries,
            )
            return [CreateJob(desired, attempt), WriteStatus(created), *earlier]
        if desired.reason == RESTARTING and desired.job_name == name:
            # The next attempt is recorded and its Job not made yet (or not
            # seen yet: a create that finds it is harmless).
            return [CreateJob(desired, attempt), *earlier]
        # Its Job existed (the training left PENDING) and is gone while the
        # training was unfinished: someone else deleted it. Recreating it
        # would fight whoever did, and run the training twice.
        gone = StatusUpdate(
            observed_generation=desired.generation,
            phase=Phase.FAILED,
            reason="JobDeleted",
            message=f"its Job {name} was deleted outside Train Conductor before it finished",
            job_name=name,
            attempts=desired.attempts,
            conditions=desired.conditions,
            finish_time_ms=now_ms,
            retries=desired.retries,
        )
        return [WriteStatus(gone), *earlier]

    if _deleting(job):
        return earlier  # its deletion will be observed when it is gone
    assert seen is not None
    actions = list(earlier)
    uid = job.get("metadata", {}).get("uid", "")
    if nodes > 1 and services is not None and name not in services and uid:
        # Made after its Job, which owns it: a crash in between leaves a Job
        # without it, and this makes it then.
        actions.append(CreateService(desired, name, uid))
    position = 0
    if desired.queue:
        queued, queue_actions = _in_queue(desired, job, workload, now_ms, missing_priority)
        actions += queue_actions
        if queued is not None:
            seen = replace(seen, phase=queued.phase, reason=queued.reason, message=queued.message)
            position = queue_position if queued.waiting else 0
            if queued.preempted and queued.phase == Phase.QUEUED and desired.phase == Phase.RUNNING:
                # Back in the queue before the preemption was seen: it is
                # told all the same, on the way.
                kueue_reason, message = queued.preempted
                stopped = replace(
                    seen,
                    phase=Phase.SUSPENDED,
                    reason=PREEMPTED,
                    message=f"preempted by Kueue ({kueue_reason}): {message}",
                )
                actions.append(WriteStatus(_update(desired, stopped, name)))
    update = _update(desired, seen, name, position)
    if _differs(desired, update):
        actions.append(WriteStatus(update))
    # After the status: a patch refused (a policy, a Role without it) must
    # not keep the training from showing that it runs.
    deadline = _deadline(job, pods, deadline_seconds)
    if deadline is not None:
        actions.append(deadline)
    return actions


def _in_queue(
    desired: TrainingRecord,
    job: Job,
    workload: Workload | None,
    now_ms: int,
    missing_priority: bool = False,
) -> tuple[Standing | None, list[Action]]:
    """Where a queued training stands, and what its hold or release needs
    done to its Workload."""
    actions: list[Action] = []
    inactive = workload is not None and workload.get("spec", {}).get("active") is False
    if desired.held and workload is not None and not inactive:
        actions.append(SetWorkloadActive(workload["metadata"]["name"], False))
    if not desired.held and inactive and desired.reason == HELD:
        # Released: its Workload goes back in the queue (one Kueue took out
        # itself, after too many requeues, stays out).
        assert workload is not None
        actions.append(SetWorkloadActive(workload["metadata"]["name"], True))
        released = Standing(
            Phase.QUEUED,
            WAITING_FOR_QUOTA,
            f"released by its owner; back in queue {desired.queue}",
            waiting=True,
        )
        return released, actions
    # Kueue unsuspends an admitted Job; until the Job controller has seen
    # it, the Job's Suspended condition stays True: it starts, it is not
    # suspended.
    suspended = bool(job.get("spec", {}).get("suspend")) or any(
        c.get("type") == "Suspended" and c.get("status") == "True"
        for c in job.get("status", {}).get("conditions") or []
    )
    queued = standing(
        workload,
        queue=desired.queue,
        held=desired.held,
        job_suspended=suspended,
        now_ms=now_ms,
        missing_priority=desired.priority if missing_priority else "",
    )
    return queued, actions


def _after_failure(
    desired: TrainingRecord, seen: Observed, name: str, attempt: int, failure: Failure
) -> StatusUpdate:
    """What a failed attempt leaves: the next attempt (QUEUED, Restarting,
    its Job named), or the training FAILED."""
    base = _update(desired, seen, name)
    spent, budget = desired.retries, desired.max_retries
    if failure.cause == Cause.USER_ERROR:
        return replace(
            base,
            reason=USER_ERROR,
            message=f"{failure.what}; not retried: its exit code means an error in the "
            "training's input or arguments",
        )
    if failure.cause == Cause.RETRYABLE and spent >= budget:
        retries = f"{spent} of {budget} retries spent" if budget else "no retries allowed"
        return replace(
            base,
            reason=RETRIES_EXHAUSTED,
            message=f"attempt {attempt}: {failure.what}; not retried ({retries})",
        )
    if failure.cause == Cause.RETRYABLE:
        spent += 1
        why = f"retry {spent} of {budget}"
    else:
        why = f"no retry spent, {spent} of {budget} so far"
    gang = "the gang restarts" if nodes_of(desired.spec) > 1 else "it restarts"
    return StatusUpdate(
        observed_generation=desired.generation,
        phase=Phase.QUEUED,
        reason=RESTARTING,
        message=f"attempt {attempt + 1}: {failure.what} in attempt {attempt}; {gang} ({why})",
        job_name=job_name(desired.id, attempt + 1),
        attempts=attempt + 1,
        conditions=seen.conditions,
        start_time_ms=seen.start_time_ms,
        retries=spent,
    )
