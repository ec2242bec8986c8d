"""Why an attempt failed, and so what follows it. Pure.

Each failed attempt is one of three causes:

- a disruption: Kubernetes stopped a pod itself (a preemption, an eviction,
  a drained or lost node), marking it DisruptionTarget. Not the trainer's
  doing: the training restarts without spending a retry;
- a user's error: the trainer exited with a code the operator lists as the
  user's (fms-hf-tuning exits 1 for a bad argument or dataset). Running it
  again would fail again: the training fails at once, with that rank's
  termination message;
- anything else (an out-of-memory kill, a crash, a lost connection): the
  training spends one retry of its budget, or fails when none is left.

In a gang one failure brings down the rest (the other ranks lose their
peer), so the cause is the first failure: a disruption of any rank, else the
rank whose trainer exited first.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from trainconductor_controller.names import COMPLETION_INDEX, CONTAINER_NAME
from trainconductor_controller.objects import ContainerStateTerminated, Pod

# Kubelet reasons of a pod it stopped itself, from before (or beside)
# DisruptionTarget: node-pressure eviction and node shutdown.
_KUBELET_DISRUPTIONS = frozenset({"Evicted", "Shutdown", "NodeShutdown", "Terminated"})
_MESSAGE_CHARS = 512
# The Job controller's words for the pod that fired a FailJob rule of the
# podFailurePolicy (jobs.py): the first failure it saw, named even when the
# pod is gone from the cache by the time the Job's verdict is read.
_BY_CONDITION = re.compile(r"Pod [^/\s]+/(?P<pod>\S+) has condition DisruptionTarget matching")
_BY_EXIT_CODE = re.compile(
    r"Container \S+ for pod [^/\s]+/(?P<pod>\S+) failed with exit code (?P<code>\d+) matching"
)
# An Indexed Job's pod: <job>-<index>-<five random characters>.
_INDEXED_POD = re.compile(r"-(?P<rank>\d+)-[a-z0-9]{5}$")


class Cause(enum.Enum):
    DISRUPTION = "disruption"
    USER_ERROR = "user_error"
    RETRYABLE = "retryable"


@dataclass(frozen=True)
class Failure:
    cause: Cause
    # What happened, for a person: "rank 3 exited with code 1 (Error): ...".
    what: str


def rank_of(pod: Pod) -> int | None:
    """A pod's rank: its Indexed Job's completion index; None for a pod of
    a Job that is not Indexed."""
    index = pod.get("metadata", {}).get("labels", {}).get(COMPLETION_INDEX)
    return int(index) if index is not None and index.isdigit() else None


def _who(pod: Pod, multi_node: bool) -> str:
    if not multi_node:
        return "the trainer"
    rank = rank_of(pod)
    if rank is None:
        named = _INDEXED_POD.search(pod.get("metadata", {}).get("name", ""))
        rank = int(named["rank"]) if named else None
    return f"rank {rank}" if rank is not None else "a rank"


def _disruption(pod: Pod) -> str | None:
    """What Kubernetes said when it stopped the pod itself; None when it did not."""
    status = pod.get("status", {})
    for c in status.get("conditions") or []:
        if c.get("type") == "DisruptionTarget" and c.get("status") == "True":
            return _said(c.get("reason") or "Disrupted", c.get("message"))
    if status.get("phase") == "Failed" and status.get("reason") in _KUBELET_DISRUPTIONS:
        return _said(status.get("reason") or "", status.get("message"))
    return None


def _said(reason: str, message: str | None) -> str:
    return f"{reason}: {message.strip()[:_MESSAGE_CHARS]}" if message else reason


def _trainer_exit(pod: Pod) -> ContainerStateTerminated | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name", CONTAINER_NAME) != CONTAINER_NAME:
            continue
        terminated = (status.get("state") or {}).get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            return terminated
    return None


def exit_description(who: str, terminated: ContainerStateTerminated) -> str:
    """ "rank 3 exited with code 137 (OOMKilled): <its termination message>" """
    said = f"{who} exited with code {terminated.get('exitCode')}"
    if terminated.get("reason"):
        said += f" ({terminated['reason']})"
    message = str(terminated.get("message") or "").strip()
    if message:
        said += f": {message[:_MESSAGE_CHARS]}"
    return said


def classify(
    pods: list[Pod],
    *,
    multi_node: bool,
    user_error_exit_codes: frozenset[int],
    job_message: str,
) -> Failure:
    """The cause of a failed attempt, from its pods and `job_message`, the
    message of the Job's Failed condition, which names the pod whose failure
    ended it (the pod may be gone by now)."""
    disrupted = [(pod, said) for pod in pods if (said := _disruption(pod)) is not None]
    if disrupted:
        pod, said = min(disrupted, key=lambda d: rank_of(d[0]) or 0)
        return Failure(
            Cause.DISRUPTION, f"{_who(pod, multi_node)} was stopped by Kubernetes ({said})"
        )
    by_condition = _BY_CONDITION.search(job_message)
    if by_condition:
        named: Pod = {"metadata": {"name": by_condition["pod"]}}
        return Failure(
            Cause.DISRUPTION,
            f"{_who(named, multi_node)} was stopped by Kubernetes (DisruptionTarget)",
        )
    exits = [(pod, terminated) for pod in pods if (terminated := _trainer_exit(pod)) is not None]
    by_exit = _BY_EXIT_CODE.search(job_message)
    if by_exit:
        fired = [e for e in exits if e[0].get("metadata", {}).get("name") == by_exit["pod"]]
        if fired:
            exits = fired  # the one the Job controller saw first
        else:
            gone: Pod = {"metadata": {"name": by_exit["pod"]}}
            exits = [(gone, {"exitCode": int(by_exit["code"])})]
    if exits:
        # The first to fail; the others most likely failed for want of it.
        pod, terminated = min(
            exits, key=lambda e: (e[1].get("finishedAt") or "", rank_of(e[0]) or 0)
        )
        code = int(terminated.get("exitCode") or 0)
        cause = Cause.USER_ERROR if code in user_error_exit_codes else Cause.RETRYABLE
        return Failure(cause, exit_description(_who(pod, multi_node), terminated))
    return Failure(Cause.RETRYABLE, job_message or "the Job failed")
