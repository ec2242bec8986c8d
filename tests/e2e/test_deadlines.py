"""A training's deadline counts from when its trainer started, as the API
says: a training that waited for its pod longer than its deadline still
runs, and is stopped once it has run for its deadline. (Kubernetes counts a
Job's activeDeadlineSeconds from the Job's start, the wait included.)"""

from __future__ import annotations

import time

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from devstack.stack import Stack
from devstack.waiting import wait_for

WAIT_SECONDS = 4  # longer than the deadline
DEADLINE_SECONDS = 1  # shorter than the run of a pod here (3 s)


def test_the_wait_for_a_pod_does_not_count_against_the_deadline(stack: Stack) -> None:
    spec = lora_spec()
    spec.deadline.seconds = DEADLINE_SECONDS
    with stack.quota("tc-e2e-wait-for-pods", {"pods": "0"}):
        training = stack.create(spec)
        wait_for(
            "the pod's refusal on the training",
            lambda: stack.get(training.id).reason == "PodRefused",
            describe=lambda: str(stack.get(training.id)),
        )
        time.sleep(WAIT_SECONDS)
        waiting = stack.get(training.id)
        assert waiting.phase == pb.PHASE_QUEUED, waiting  # waiting still, not FAILED
        lifted = time.time()

    stopped = stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED, pb.PHASE_FAILED}, timeout=120)
    assert (stopped.phase, stopped.reason) == (pb.PHASE_FAILED, "DeadlineExceeded"), stopped
    # It started after the wait, and ran for its deadline (rounded up to
    # whole seconds), not for the whole run of its pod.
    started = stopped.start_time.ToMilliseconds() / 1000
    assert started >= int(lifted), (started, lifted)
    ran = stopped.finish_time.ToMilliseconds() / 1000 - started
    assert DEADLINE_SECONDS <= ran < DEADLINE_SECONDS + 3, ran
    job = next(j for j in stack.jobs() if j.metadata.name == f"train-{training.id}")
    assert job.spec.active_deadline_seconds >= WAIT_SECONDS + DEADLINE_SECONDS


def test_a_resumed_job_waiting_again_for_a_pod_keeps_its_whole_deadline(stack: Stack) -> None:
    """Suspended while it runs (as a queueing system such as Kueue does to
    preempt it) and resumed: Kubernetes restarts the Job's count at the
    resume, and the new wait for a pod must not use up the deadline either."""
    spec = lora_spec()
    spec.deadline.seconds = 10  # longer than the run of a pod here (3 s)
    training = stack.create(spec)
    name = f"train-{training.id}"
    jobs = client.BatchV1Api(stack.kube)
    wait_for(
        "the deadline on the running training's Job",
        lambda: _deadline_of(jobs, name, stack.namespace),
        timeout=30,
    )
    jobs.patch_namespaced_job(name, stack.namespace, {"spec": {"suspend": True}})
    stack.wait_for_phase(training.id, {pb.PHASE_SUSPENDED}, timeout=30)
    time.sleep(1.5)  # Kubernetes keeps times to the second: resume in another

    with stack.quota("tc-e2e-wait-after-resuming", {"pods": "0"}):
        jobs.patch_namespaced_job(name, stack.namespace, {"spec": {"suspend": False}})
        wait_for(
            "the pod's refusal on the resumed training",
            lambda: stack.get(training.id).reason == "PodRefused",
            describe=lambda: str(stack.get(training.id)),
        )
        time.sleep(spec.deadline.seconds + 4)  # longer than what the Job had
        assert _deadline_of(jobs, name, stack.namespace) is None
        waiting = stack.get(training.id)
        assert waiting.phase == pb.PHASE_QUEUED, waiting  # waiting still, not FAILED

    done = stack.wait_for_phase(training.id, {pb.PHASE_COMPLETED, pb.PHASE_FAILED}, timeout=120)
    assert done.phase == pb.PHASE_COMPLETED, done  # it ran 3 s of its 10


def _deadline_of(jobs: client.BatchV1Api, name: str, namespace: str) -> int | None:
    """The Job's activeDeadlineSeconds; None too while the controller has
    not made the Job yet."""
    try:
        seconds: int | None = jobs.read_namespaced_job(name, namespace).spec.active_deadline_seconds
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return seconds
