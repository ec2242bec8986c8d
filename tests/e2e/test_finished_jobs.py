"""A finished training's Job: Kubernetes never deletes it on its own (were it
gone before the verdict was recorded, the training would read as deleted
mid-run); the controller deletes it once the verdict is in Redis and the
Job has been kept `ttl_seconds_after_finished`."""

from __future__ import annotations

from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from devstack.stack import Stack
from devstack.waiting import wait_for

FINAL = {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED}


def test_a_finished_job_is_deleted_by_the_controller_after_the_verdict(stack: Stack) -> None:
    stack.controllers["controller-0"].stop()
    stack.start_controller("controller-0", TC_TTL_SECONDS_AFTER_FINISHED="0")
    training = stack.create(lora_spec())
    queued = stack.wait_for_phase(training.id, {pb.PHASE_QUEUED, pb.PHASE_RUNNING, *FINAL})
    job = client.BatchV1Api(stack.kube).read_namespaced_job(queued.job_name, stack.namespace)
    assert job.spec.ttl_seconds_after_finished is None

    done = stack.wait_for_phase(training.id, FINAL)
    assert done.phase == pb.PHASE_COMPLETED
    # Deleted on a later reconcile: the next event of the Job or the resync (30 s here).
    wait_for(
        "the controller to delete the finished Job",
        lambda: all(j.metadata.name != done.job_name for j in stack.jobs()),
        timeout=90,
    )
    assert stack.get(training.id).phase == pb.PHASE_COMPLETED
    stack.controllers["controller-0"].wait_for_log("job deleted")
