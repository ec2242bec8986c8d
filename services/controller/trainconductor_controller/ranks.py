"""Where each rank of a multi-node training stands, and the one line that
sums them up. Pure.

A gang trains only when all its ranks run, so the summary leads with what
holds it back: a failed rank ("rank 3 failed: exit code 137, OOMKilled"),
else a waiting one in the scheduler's or the kubelet's words ("rank 2 waits:
0/6 nodes are available: ..."), else how many run ("4/4 ranks running").
Each rank is also a condition of the training (Rank0, Rank1, ...): True
while it runs or once it succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainconductor_controller.failures import rank_of
from trainconductor_controller.objects import Pod
from trainconductor_core.phases import Phase
from trainconductor_core.record import Condition

_IMAGE_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
# Waiting reasons of a container on its normal way to running.
_STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})
_MESSAGE_CHARS = 512


@dataclass(frozen=True)
class Rank:
    index: int
    # The pod's phase: "Running", "Succeeded", "Failed", "Pending", or
    # "Missing" while the Job controller has not made its pod.
    state: str
    reason: str
    message: str

    @property
    def up(self) -> bool:
        return self.state in ("Running", "Succeeded")


def pending_reason(pod: Pod) -> tuple[str, str]:
    """Why a pending pod does not run yet, as a reason and a message."""
    status = pod.get("status", {})
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return c.get("reason") or "Unschedulable", c.get("message") or "no node fits the pod"
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in _IMAGE_REASONS:
            return reason, waiting.get("message") or "the image can not be pulled"
        if reason and reason not in _STARTING_REASONS:
            # CreateContainerConfigError (a missing Secret, runAsNonRoot)
            # and the like: the container will not start until fixed.
            return reason, waiting.get("message") or "the container can not be created"
    if pod.get("spec", {}).get("nodeName"):
        return "ContainerCreating", f"scheduled on {pod['spec']['nodeName']}; starting"
    return "Pending", "waiting for the scheduler"


def _failed(pod: Pod) -> tuple[str, str]:
    """ "exit code 137, OOMKilled", or what Kubernetes said when it stopped the pod."""
    status = pod.get("status", {})
    for c in status.get("conditions") or []:
        if c.get("type") == "DisruptionTarget" and c.get("status") == "True":
            said = c.get("reason") or "Disrupted"
            return "Disrupted", f"stopped by Kubernetes ({said})"
    for cs in status.get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            message = f"exit code {terminated.get('exitCode')}"
            if terminated.get("reason"):
                message += f", {terminated['reason']}"
            return terminated.get("reason") or "Error", message
    reason = status.get("reason") or "Failed"
    return reason, str(status.get("message") or reason)[:_MESSAGE_CHARS]


def _rank(index: int, pod: Pod | None) -> Rank:
    if pod is None:
        return Rank(index, "Missing", "NoPod", "its pod is not made yet")
    phase = pod.get("status", {}).get("phase") or "Pending"
    if phase == "Running":
        return Rank(
            index, phase, "Running", f"running on {pod.get('spec', {}).get('nodeName', '')}"
        )
    if phase == "Succeeded":
        return Rank(index, phase, "Succeeded", "its trainer completed")
    if phase == "Failed":
        return Rank(index, phase, *_failed(pod))
    return Rank(index, "Pending", *pending_reason(pod))


def ranks(pods: list[Pod], nodes: int) -> list[Rank]:
    """Each rank 0..nodes-1, from its newest pod (the Job controller may
    have replaced one)."""
    newest: dict[int, Pod] = {}
    for pod in pods:
        index = rank_of(pod)
        if index is None or not 0 <= index < nodes:
            continue
        made = pod.get("metadata", {}).get("creationTimestamp") or ""
        kept = newest.get(index)
        if kept is None or made >= (kept.get("metadata", {}).get("creationTimestamp") or ""):
            newest[index] = pod
    return [_rank(i, newest.get(i)) for i in range(nodes)]


def gang_summary(states: list[Rank]) -> tuple[Phase, str, str]:
    """The gang's phase, reason and one-line message."""
    nodes = len(states)
    running = sum(r.state == "Running" for r in states)
    done = sum(r.state == "Succeeded" for r in states)
    failed = [r for r in states if r.state == "Failed"]
    if failed:
        first = failed[0]
        return Phase.RUNNING, "RankFailed", f"rank {first.index} failed: {first.message}"
    waiting = [r for r in states if not r.up]
    if waiting:
        first = waiting[0]
        said = f"rank {first.index} waits: {first.message}"
        if running:
            said = f"{running}/{nodes} ranks running; {said}"
        if len(waiting) > 1:
            said += f" ({len(waiting)} ranks wait)"
        return Phase.QUEUED, first.reason, said
    if done:
        return Phase.RUNNING, "Running", f"{done}/{nodes} ranks done, {running} running"
    return Phase.RUNNING, "Running", f"{running}/{nodes} ranks running"


def rank_conditions(states: list[Rank]) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=f"Rank{r.index}",
            status="True" if r.up else "False",
            reason=r.reason,
            message=r.message[:_MESSAGE_CHARS],
        )
        for r in states
    )
