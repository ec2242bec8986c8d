"""What a Job and its pods say about a training's phase, and why. Pure.

The reason is a CamelCase word (Kubernetes style), the message a sentence
that tells a person why a training waits or failed: the scheduler's words
for an unschedulable pod, the kubelet's for an image that will not pull,
the Job controller's for a pod refused by a quota, the exit code and
termination message of a failed container.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from trainconductor_controller.names import CONTAINER_NAME
from trainconductor_controller.objects import (
    ContainerStateTerminated,
    Job,
    JobCondition,
    Pod,
    Refusal,
)
from trainconductor_controller.ranks import gang_summary, pending_reason, rank_conditions, ranks
from trainconductor_core.phases import Phase
from trainconductor_core.record import Condition


@dataclass(frozen=True)
class Observed:
    phase: Phase
    reason: str
    message: str
    attempts: int = 0
    start_time_ms: int | None = None
    finish_time_ms: int | None = None
    conditions: tuple[Condition, ...] = ()


def parse_time_ms(value: str | None) -> int | None:
    if not value:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _true_condition(job: Job, kind: str) -> JobCondition | None:
    for c in job.get("status", {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True":
            return c
    return None


def _conditions(job: Job) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=c.get("type", ""),
            status=c.get("status", ""),
            reason=c.get("reason", "") or "",
            message=(c.get("message", "") or "")[:1024],
            last_transition_ms=parse_time_ms(c.get("lastTransitionTime")) or 0,
        )
        for c in job.get("status", {}).get("conditions") or []
    )


def _terminated(pods: list[Pod]) -> ContainerStateTerminated | None:
    """The termination record of the most recent failed trainer container."""
    latest: ContainerStateTerminated | None = None
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if (
                terminated
                and terminated.get("exitCode", 0) != 0
                and (
                    latest is None
                    or (terminated.get("finishedAt") or "") >= (latest.get("finishedAt") or "")
                )
            ):
                latest = terminated
    return latest


def trainer_starts_ms(pods: list[Pod]) -> list[int]:
    """When the trainer started, in each of the Job's pods that ran it. The
    first is the training's start. (The Job's own startTime is when the Job
    controller took it up, before any wait for a node.)"""
    starts = []
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses") or []:
            if status.get("name") != CONTAINER_NAME:
                continue
            state = status.get("state") or {}
            for started_at in (
                (state.get("running") or {}).get("startedAt"),
                (state.get("terminated") or {}).get("startedAt"),
            ):
                started = parse_time_ms(started_at)
                # A container that could not start (StartError) says it
                # started at the epoch. (Any other time stands, though it is
                # the node's clock, which may be behind the control plane's.)
                if started:
                    starts.append(started)
    return starts


def _newest_first(pods: list[Pod]) -> list[Pod]:
    return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)


def _disruption(pods: list[Pod]) -> str:
    """What Kubernetes said when it stopped a pod itself (an eviction, a
    preemption, a lost node), newest first; '' when none was."""
    for pod in _newest_first(pods):
        status = pod.get("status", {})
        for c in status.get("conditions") or []:
            if c.get("type") == "DisruptionTarget" and c.get("status") == "True":
                return _reason_and_message(c.get("reason") or "Disrupted", c.get("message"))
        if status.get("phase") == "Failed" and status.get("reason"):
            return _reason_and_message(status["reason"], status.get("message"))
    return ""


def _reason_and_message(reason: str, message: str | None) -> str:
    return f"{reason}: {message}" if message else reason


def _failure_message(condition: JobCondition, pods: list[Pod]) -> str:
    message = condition.get("message") or "the Job failed"
    disrupted = _disruption(pods)
    if disrupted:  # not the trainer's doing: its exit code would mislead
        return f"{message}; Kubernetes stopped its pod ({disrupted})"
    terminated = _terminated(pods)
    if terminated:
        message += f"; the trainer exited with code {terminated.get('exitCode')}"
        if terminated.get("reason"):
            message += f" ({terminated['reason']})"
        if terminated.get("message"):
            message += f": {str(terminated['message']).strip()[:512]}"
    return message


def _waiting(pods: list[Pod], refusals: list[Refusal]) -> tuple[str, str]:
    """Why the newest pending pod is not running yet, or why there is none."""
    for pod in _newest_first(pods):
        if pod.get("status", {}).get("phase") == "Pending":
            return pending_reason(pod)
    if refusals:
        return _refused(refusals)
    return "JobCreated", "the Job was created; waiting for its pod"


def created_ms(pod: Pod) -> int:
    """When the API server made the pod (the control plane's clock)."""
    return parse_time_ms(pod.get("metadata", {}).get("creationTimestamp")) or 0


def refused_at_ms(refusal: Refusal) -> int:
    """When a refusal was last said (its times may or may not have fractions)."""
    return parse_time_ms(refusal.get("lastTimestamp")) or 0


def _refused(refusals: list[Refusal]) -> tuple[str, str]:
    newest = max(refusals, key=refused_at_ms)
    return "PodRefused", f"Kubernetes refused its pod; the Job retries: {newest['message']}"


def _refused_since(pods: list[Pod], refusals: list[Refusal]) -> bool:
    """Whether the Job's newest pod creation was refused after its last pod came."""
    newest_pod = max(created_ms(p) for p in pods)
    return any(refused_at_ms(r) > newest_pod for r in refusals)


def observe(
    job: Job,
    pods: list[Pod],
    refusals: list[Refusal] | None = None,
    *,
    ran: bool = False,
    nodes: int = 1,
) -> Observed:
    """`refusals`: the Job controller's FailedCreate events on the Job; `ran`:
    whether its trainer is known to have run (its pods may be gone since);
    `nodes`: the pods (ranks) the Job runs at once."""
    status = job.get("status", {})
    seen = Observed(
        Phase.QUEUED,
        "",
        "",
        attempts=status.get("active", 0) + status.get("succeeded", 0) + status.get("failed", 0),
        start_time_ms=min(trainer_starts_ms(pods), default=None),
        conditions=_conditions(job),
    )
    complete = _true_condition(job, "Complete")
    if complete:
        finish = parse_time_ms(status.get("completionTime") or complete.get("lastTransitionTime"))
        return replace(
            seen,
            phase=Phase.COMPLETED,
            reason="Completed",
            message="the training completed",
            finish_time_ms=finish,
        )
    failed = _true_condition(job, "Failed")
    if failed:
        return replace(
            seen,
            phase=Phase.FAILED,
            reason=failed.get("reason") or "Failed",
            message=_failure_message(failed, pods),
            finish_time_ms=parse_time_ms(failed.get("lastTransitionTime")),
        )
    ending = _true_condition(job, "FailureTarget") or _true_condition(job, "SuccessCriteriaMet")
    if ending:
        # Kubernetes stops the pods first, and gives its verdict (Failed,
        # Complete) once they are gone: meanwhile the training is not queued.
        return replace(
            seen,
            phase=Phase.RUNNING if ran or seen.start_time_ms else Phase.QUEUED,
            reason="Finishing",
            message=f"the Job is ending ({ending.get('reason') or ending.get('type')}); "
            "its pods are stopping",
        )
    # Asked to suspend: its pods are being deleted, and the condition follows.
    if _true_condition(job, "Suspended") or job.get("spec", {}).get("suspend"):
        return replace(
            seen, phase=Phase.SUSPENDED, reason="Suspended", message="the Job is suspended"
        )
    if nodes > 1 and (pods or not refusals):
        states = ranks(pods, nodes)
        phase, reason, message = gang_summary(states)
        return replace(
            seen,
            phase=phase,
            reason=reason,
            message=message,
            conditions=seen.conditions + rank_conditions(states),
        )
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    if running:
        node = running[0].get("spec", {}).get("nodeName", "")
        return replace(seen, phase=Phase.RUNNING, reason="Running", message=f"running on {node}")
    if pods and all(p.get("status", {}).get("phase") in ("Succeeded", "Failed") for p in pods):
        if refusals and _refused_since(pods, refusals):
            # Its pod was evicted, or failed with retries left, and the pod
            # replacing it is refused (a quota, now full): it waits again.
            reason, message = _refused(refusals)
            return replace(seen, reason=reason, message=message)
        # The trainer exited; the Job's verdict (Complete, Failed, a retry)
        # follows in a moment. Until then it is still running, not queued.
        return replace(
            seen,
            phase=Phase.RUNNING,
            reason="Finishing",
            message="the trainer exited; waiting for the Job's verdict",
        )
    reason, message = _waiting(pods, refusals or [])
    return replace(seen, reason=reason, message=message)
