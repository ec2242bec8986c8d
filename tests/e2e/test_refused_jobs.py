"""A Job the Kubernetes API refuses (here a ResourceQuota allowing none):
the training stays PENDING and says why, then starts once the refusal ends.
Likewise a Job whose pod is refused: the training stays QUEUED and says why."""

from __future__ import annotations

from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from devstack.stack import Stack
from devstack.waiting import wait_for

QUOTA = "tc-e2e-no-jobs"
POD_QUOTA = "tc-e2e-no-pods"


def test_a_refused_job_is_told_on_the_training_and_retried(stack: Stack) -> None:
    with stack.quota(QUOTA, {"count/jobs.batch": "0"}):
        training = stack.create(lora_spec())
        refused = wait_for(
            "the refusal on the training",
            lambda: (t := stack.get(training.id)).reason == "JobRefused" and t,
            describe=lambda: str(stack.get(training.id)),
        )
        assert refused.phase == pb.PHASE_PENDING
        assert "HTTP 403" in refused.message, refused.message
        assert "exceeded quota" in refused.message, refused.message
        assert all(j.metadata.name != f"train-{training.id}" for j in stack.jobs())

    # Retried with backoff (at most 30 s apart): the Job comes once it may.
    started = stack.wait_for_phase(
        training.id, {pb.PHASE_QUEUED, pb.PHASE_RUNNING, pb.PHASE_COMPLETED}, timeout=90
    )
    assert started.reason != "JobRefused"


def test_a_refused_pod_is_told_on_the_training_until_it_is_created(stack: Stack) -> None:
    """The Job is created; the Job controller may not create its pod. Only
    a FailedCreate event on the Job says so, and the training passes it on."""
    with stack.quota(POD_QUOTA, {"pods": "0"}):
        training = stack.create(lora_spec())
        refused = wait_for(
            "the pod's refusal on the training",
            lambda: (t := stack.get(training.id)).reason == "PodRefused" and t,
            describe=lambda: str(stack.get(training.id)),
        )
        assert refused.phase == pb.PHASE_QUEUED
        assert refused.message.startswith("Kubernetes refused its pod"), refused.message
        assert "exceeded quota" in refused.message, refused.message
        assert POD_QUOTA in refused.message, refused.message

    # The Job controller retries with backoff (at most a minute apart).
    started = stack.wait_for_phase(training.id, {pb.PHASE_RUNNING, pb.PHASE_COMPLETED}, timeout=120)
    assert started.reason != "PodRefused"
