"""Reconcile one training: read what is wanted and what is, plan, act."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import propagate, trace

from trainconductor_controller import metrics
from trainconductor_controller.admission import PREEMPTED, WAITING_REASONS, workload_of
from trainconductor_controller.errors import KubernetesError, NotLeader
from trainconductor_controller.informer import Informer
from trainconductor_controller.jobs import build_job, build_service, deadline_seconds
from trainconductor_controller.kube import Kube
from trainconductor_controller.log_keeper import keep_logs
from trainconductor_controller.names import (
    ATTEMPT_ANNOTATION,
    JOB_NAME_LABEL,
    TRACEPARENT_ANNOTATION,
    job_name,
    made_by,
)
from trainconductor_controller.objects import Job, Pod, Refusal, Service, Workload, slim_job
from trainconductor_controller.plan import (
    Action,
    CreateJob,
    CreateService,
    DeleteJob,
    SetDeadline,
    SetWorkloadActive,
    WriteStatus,
    plan,
)
from trainconductor_controller.positions import QueuePositions
from trainconductor_controller.priorities import PriorityClasses
from trainconductor_controller.settings import ControllerSettings
from trainconductor_controller.waiting import Wait, Waiting
from trainconductor_core.errors import TrainingNotFound
from trainconductor_core.logs import training_id_var
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate, TrainingRecord
from trainconductor_core.store import TrainingStore, WriteResult

log = logging.getLogger(__name__)
tracer = trace.get_tracer("trainconductor.controller")

# Phases in which the training's Job should exist.
_WITH_JOB = frozenset({Phase.QUEUED, Phase.RUNNING, Phase.SUSPENDED})
_REFUSED = "JobRefused"
_JOB_CREATED = "JobCreated"  # made, not yet taken up by Kueue


def _made_before_attempts(jobs: list[Job], training_id: str) -> Job | None:
    """The Job of a training recorded before each attempt was a Job of its
    own, when it still runs: its `attempts` counted the Job's pods, not Jobs,
    and its one Job is its first attempt's."""
    first = job_name(training_id)
    for job in jobs:
        metadata = job.get("metadata", {})
        if metadata.get("name") == first and ATTEMPT_ANNOTATION not in (
            metadata.get("annotations") or {}
        ):
            return job
    return None


class Reconciler:
    def __init__(
        self,
        store: TrainingStore,
        kube: Kube,
        jobs: Informer[Job],
        pods: Informer[Pod],
        refusals: Informer[Refusal],
        settings: ControllerSettings,
        *,
        is_leader: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        workloads: Informer[Workload] | None = None,
        positions: QueuePositions | None = None,
        waiting: Waiting | None = None,
        priorities: PriorityClasses | None = None,
        services: Informer[Service] | None = None,
    ) -> None:
        """With queues: `workloads`, the cache of Kueue's Workloads;
        `positions`, the trainings' places in their queues; `waiting`,
        what waits where, for the queue gauges; `priorities`, which
        priority classes exist. `services`: the cache of the multi-node
        trainings' headless Services."""
        self._services = services
        self._user_error_exit_codes = frozenset(settings.user_error_exit_codes)
        self._workloads = workloads
        self._priorities = priorities
        self._positions = positions
        self._waiting = waiting or Waiting(clock)
        self._store = store
        self._kube = kube
        self._jobs = jobs
        self._pods = pods
        self._refusals = refusals
        self._settings = settings
        self._is_leader = is_leader
        self._clock = clock
        self._tracing = settings.tracing_enabled

    async def reconcile(self, training_id: str) -> None:
        training_id_var.set(training_id)
        try:
            desired: TrainingRecord | None = await self._store.get(training_id)
        except TrainingNotFound:
            desired = None  # StoreUnavailable propagates: unknown is not "absent"
        if not self._tracing:
            await self._reconcile(training_id, desired)
            return
        context = propagate.extract(desired.trace_context) if desired else None
        with tracer.start_as_current_span("reconcile", context=context) as span:
            span.set_attribute("trainconductor.training_id", training_id)
            await self._reconcile(training_id, desired)

    def _span(self, name: str) -> AbstractContextManager[object]:
        """The span of a Kubernetes call, in the reconcile's trace; none when
        tracing is off, as the reconcile's own: OpenTelemetry's no-op spans
        still cost their making, on every reconcile (docs/performance.md)."""
        return tracer.start_as_current_span(name) if self._tracing else nullcontext()

    async def _reconcile(self, training_id: str, desired: TrainingRecord | None) -> None:
        """Plans from what is wanted (`desired`, None once the training is
        gone) and what is (the caches), and acts."""
        instance = self._settings.lease_name
        # Another install's Jobs are none of ours.
        mine = [j for j in self._jobs.get(training_id) if made_by(j, instance)]
        current = job_name(training_id, max(desired.attempts, 1)) if desired else ""
        job = next((j for j in mine if j["metadata"]["name"] == current), None)
        if job is None and desired is not None and desired.attempts > 1:
            job = _made_before_attempts(mine, training_id)
        if desired is None and mine:
            job = mine[0]
        others = [j for j in mine if j is not job]
        if job is None and desired is not None and desired.phase in _WITH_JOB:
            # The cache may lag behind a Job created moments ago: ask the
            # API server before concluding the Job is gone.
            live = await asyncio.to_thread(self._kube.get_job, current)
            job = slim_job(live) if live else None
        if job is not None:
            current = job["metadata"]["name"]
        # The current attempt's pods only (a pod names its Job in a label).
        pods = [
            p
            for p in self._pods.get(training_id)
            if p.get("metadata", {}).get("labels", {}).get(JOB_NAME_LABEL, current) == current
        ]
        services = (
            frozenset(s["metadata"]["name"] for s in self._services.get(training_id))
            if self._services is not None
            else None
        )
        workload = None
        if job is not None and self._workloads is not None:
            workload = workload_of(job, self._workloads.get(training_id))
        # Without its priority class, Kueue makes no Workload: say why.
        missing_priority = (
            job is not None
            and workload is None
            and desired is not None
            and bool(desired.priority)
            and self._priorities is not None
            and await self._priorities.missing(desired.priority)
        )
        actions = plan(
            desired,
            job,
            pods,
            int(self._clock() * 1000),
            keep_finished_ms=self._settings.ttl_seconds_after_finished * 1000,
            deadline_seconds=deadline_seconds(desired, self._settings) if desired else 0,
            refusals=self._refusals.get(training_id),
            workload=workload,
            queue_position=self._positions.get(training_id) if self._positions else 0,
            missing_priority=missing_priority,
            other_jobs=others,
            services=services,
            user_error_exit_codes=self._user_error_exit_codes,
            max_disruption_restarts=self._settings.max_disruption_restarts,
        )
        if desired is not None and _finishes(desired, actions):
            # Before the status that finishes it (and a cancel's delete):
            # the pods are still there to read.
            await keep_logs(
                self._store,
                self._kube,
                training_id,
                self._pods.get(training_id),
                self._settings.kept_log_bytes,
            )
        for action in actions:
            if not await self._act(action, desired):
                break  # a stale write: what follows it was planned on an old view
        self._note_wait(training_id, desired, actions)

    def _note_wait(
        self, training_id: str, desired: TrainingRecord | None, actions: list[Action]
    ) -> None:
        """Whether and why the training waits in its queue now, for the gauges."""
        writes = [a.update for a in actions if isinstance(a, WriteStatus)]
        phase, reason = (
            (writes[-1].phase, writes[-1].reason)
            if writes
            else (desired.phase, desired.reason)
            if desired
            else (None, "")
        )
        waits = desired is not None and desired.queue and phase == Phase.QUEUED
        if waits and reason in WAITING_REASONS:
            assert desired is not None
            self._waiting.note(training_id, Wait(desired.queue, reason, desired.create_time_ms))
        else:
            self._waiting.note(training_id, None)

    async def _act(self, action: Action, desired: TrainingRecord | None) -> bool:
        """Acts; False when a status write was refused as stale."""
        if not self._is_leader():
            raise NotLeader("lost the Lease; not acting")
        if isinstance(action, CreateJob):
            manifest = build_job(action.training, self._settings, action.attempt)
            carrier: dict[str, str] = {}
            with self._span("kubernetes.create_job"):
                # The Job carries this span's context when tracing is on here;
                # else the submitter's, which build_job copied from the record.
                propagate.inject(carrier)
                if "traceparent" in carrier:
                    annotations = manifest["metadata"]["annotations"]
                    annotations[TRACEPARENT_ANNOTATION] = carrier["traceparent"]
                try:
                    created = await asyncio.to_thread(self._kube.create_job, manifest)
                except KubernetesError as err:
                    if not err.retryable:
                        await self._record_refusal(action.training, err)
                    raise  # retried with backoff: a quota may free up, a webhook be fixed
            if created and action.attempt == 1:
                waited = self._clock() - action.training.create_time_ms / 1000
                metrics.SUBMIT_TO_JOB_SECONDS.observe(max(waited, 0.0))
            if created:
                log.info(
                    "job created",
                    extra={"job": manifest["metadata"]["name"], "attempt": action.attempt},
                )
        elif isinstance(action, CreateService):
            service = build_service(
                action.training, self._settings, action.job_name, action.job_uid
            )
            with self._span("kubernetes.create_service"):
                if await asyncio.to_thread(self._kube.create_service, service):
                    log.info("service created", extra={"service": action.job_name})
        elif isinstance(action, DeleteJob):
            with self._span("kubernetes.delete_job"):
                deleted = await asyncio.to_thread(self._kube.delete_job, action.name)
            if deleted:
                log.info("job deleted", extra={"job": action.name, "why": action.why})
        elif isinstance(action, SetDeadline):
            with self._span("kubernetes.patch_job"):
                try:
                    found = await asyncio.to_thread(
                        self._kube.set_job_deadline,
                        action.name,
                        action.seconds,
                        action.counted_from,
                    )
                except KubernetesError as err:
                    if err.retryable:
                        raise
                    # A policy or a Role refused it: retrying will not help,
                    # and the training's status is written already.
                    log.warning("job deadline refused", extra={"error": str(err)})
                    return True
            if found:
                log.info(
                    "job deadline set" if action.seconds else "job deadline taken off",
                    extra={"job": action.name, "seconds": action.seconds},
                )
        elif isinstance(action, SetWorkloadActive):
            with self._span("kubernetes.patch_workload"):
                found = await asyncio.to_thread(
                    self._kube.set_workload_active, action.name, action.active
                )
            if found:
                log.info(
                    "workload put back in its queue"
                    if action.active
                    else "workload taken out of its queue",
                    extra={"workload": action.name},
                )
        elif isinstance(action, WriteStatus) and desired is not None:
            return await self._write_status(desired, action)
        return True

    @staticmethod
    def _count_queue_change(desired: TrainingRecord, update: StatusUpdate, now: float) -> None:
        """Admissions (the first, timed from the submission) and preemptions."""
        if not desired.queue:
            return
        if update.reason == PREEMPTED and desired.reason != PREEMPTED:
            # "preempted by Kueue (<Kueue's reason>): ..."
            kueue_reason = update.message.partition("(")[2].partition(")")[0] or PREEMPTED
            metrics.QUEUE_PREEMPTIONS.labels(desired.queue, kueue_reason).inc()
        admitted = update.phase in (Phase.QUEUED, Phase.RUNNING) and (
            update.reason not in WAITING_REASONS and update.reason != _JOB_CREATED
        )
        # Not yet admitted: waiting, or its Job just made (Kueue may admit
        # it before the controller wrote that it waits).
        before = (
            desired.reason in WAITING_REASONS
            or desired.phase == Phase.PENDING
            or desired.reason == _JOB_CREATED
        )
        first = desired.start_time_ms is None and before
        if admitted and first:
            waited = max(now - desired.create_time_ms / 1000, 0.0)
            metrics.SUBMIT_TO_ADMITTED_SECONDS.labels(desired.queue).observe(waited)

    async def _record_refusal(self, training: TrainingRecord, err: KubernetesError) -> None:
        """Says on the training why it stays PENDING: the Kubernetes API
        refused its Job (a ResourceQuota, a LimitRange, an admission webhook,
        an invalid manifest). Written once per distinct refusal."""
        message = f"Kubernetes refused its Job; retrying: {err}"
        if training.reason == _REFUSED and training.message == message:
            return
        update = StatusUpdate(
            observed_generation=training.generation,
            phase=Phase.PENDING if training.phase == Phase.PENDING else training.phase,
            reason=_REFUSED if training.phase == Phase.PENDING else training.reason,
            message=message,
            job_name=training.job_name,
            attempts=training.attempts,
            retries=training.retries,
        )
        if await self._store.write_status(training.id, update) == WriteResult.CHANGED:
            log.warning("job refused", extra={"error": str(err)})

    async def _write_status(self, desired: TrainingRecord, action: WriteStatus) -> bool:
        update = action.update
        result = await self._store.write_status(desired.id, update)
        if result == WriteResult.STALE:
            log.info("status write refused as stale", extra={"phase": update.phase})
            return False
        if result == WriteResult.CHANGED and action.failed_attempt:
            outcome = "failed" if update.phase.is_final else "restarted"
            metrics.FAILED_ATTEMPTS.labels(action.failed_attempt, outcome).inc()
            log.info(
                "attempt failed",
                extra={
                    "cause": action.failed_attempt,
                    "outcome": outcome,
                    "attempts": update.attempts,
                },
            )
        if result == WriteResult.CHANGED:
            # Kueue admits a training within QUEUED (its reason changes,
            # not its phase): counted on any change.
            self._count_queue_change(desired, update, self._clock())
        if result == WriteResult.CHANGED and update.phase != desired.phase:
            metrics.PHASE_TRANSITIONS.labels(desired.phase, update.phase).inc()
            log.info(
                "phase changed",
                extra={
                    "from_phase": desired.phase,
                    "to_phase": update.phase,
                    "reason": update.reason,
                },
            )
            now = self._clock()
            if update.phase == Phase.RUNNING and update.start_time_ms:
                created = desired.create_time_ms / 1000
                waited = max(update.start_time_ms / 1000 - created, 0.0)
                metrics.SUBMIT_TO_RUNNING_SECONDS.observe(waited)
            if update.phase.is_final:
                started = (
                    update.start_time_ms or desired.start_time_ms or desired.create_time_ms
                ) / 1000
                metrics.RUN_SECONDS.labels(update.phase).observe(max(now - started, 0.0))
        return True


def _finishes(desired: TrainingRecord, actions: list[Action]) -> bool:
    """Whether the actions write the status that finishes the training."""
    return not desired.phase.is_final and any(
        isinstance(a, WriteStatus) and a.update.phase.is_final for a in actions
    )
