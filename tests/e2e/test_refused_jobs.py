"""A Job the Kubernetes API refuses (here a ResourceQuota allowing none):
the training stays PENDING and says why, then starts once the refusal ends."""

from __future__ import annotations

from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from tests.e2e.stack import Stack, wait_for
from tests.support.specs import lora_spec

QUOTA = "tc-e2e-no-jobs"


def test_a_refused_job_is_told_on_the_training_and_retried(stack: Stack) -> None:
    core = client.CoreV1Api(stack.kube)
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name=QUOTA),
        spec=client.V1ResourceQuotaSpec(hard={"count/jobs.batch": "0"}),
    )
    core.create_namespaced_resource_quota(stack.namespace, quota)
    try:
        wait_for(
            "the quota controller to fill in the quota's status",
            lambda: core.read_namespaced_resource_quota(QUOTA, stack.namespace).status.hard,
        )
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
    finally:
        core.delete_namespaced_resource_quota(QUOTA, stack.namespace)

    # Retried with backoff (at most 30 s apart): the Job comes once it may.
    started = stack.wait_for_phase(
        training.id, {pb.PHASE_QUEUED, pb.PHASE_RUNNING, pb.PHASE_COMPLETED}, timeout=90
    )
    assert started.reason != "JobRefused"
