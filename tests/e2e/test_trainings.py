"""Trainings from submission to their final phase, against the real control
plane, a real Redis, and the API and controller as processes."""

from __future__ import annotations

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from devstack.stack import Stack
from devstack.waiting import wait_for

FINAL = {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED}


def distinct_phases(stack: Stack, training_id: str) -> list[int]:
    phases: list[int] = []
    stream = stack.trainings.WatchTraining(pb.WatchTrainingRequest(id=training_id), timeout=60)
    for response in stream:
        if not phases or phases[-1] != response.event.phase:
            phases.append(response.event.phase)
    return phases


def test_a_training_runs_to_completion_and_the_watch_shows_every_phase(stack: Stack) -> None:
    training = stack.create(lora_spec())
    assert distinct_phases(stack, training.id) == [
        pb.PHASE_PENDING,
        pb.PHASE_QUEUED,
        pb.PHASE_RUNNING,
        pb.PHASE_COMPLETED,
    ]
    done = stack.get(training.id)
    assert done.phase == pb.PHASE_COMPLETED
    assert done.job_name == f"train-{training.id}"
    assert done.start_time.seconds > 0
    assert done.finish_time.seconds >= done.start_time.seconds
    assert done.observed_generation == done.generation == 1
    job = next(j for j in stack.jobs() if j.metadata.name == done.job_name)
    assert job.metadata.labels["trainconductor.dev/training-id"] == training.id
    container = job.spec.template.spec.containers[0]
    assert container.image == "example.com/trainer:1"  # the operator's, not the client's
    assert container.resources.limits["nvidia.com/gpu"] == "1"


def test_a_failing_pod_fails_the_training_with_reason_and_exit_code(stack: Stack) -> None:
    training = stack.create(lora_spec())
    stack.fail_pod(f"train-{training.id}", 3, "Error", "CUDA out of memory")
    failed = stack.wait_for_phase(training.id, FINAL)
    assert failed.phase == pb.PHASE_FAILED
    assert failed.reason == "BackoffLimitExceeded"
    assert "exited with code 3" in failed.message
    assert "CUDA out of memory" in failed.message


def test_an_exceeded_deadline_fails_the_training(stack: Stack) -> None:
    spec = lora_spec()
    spec.deadline.seconds = 1  # the kwok pods run for 3s
    training = stack.create(spec)
    failed = stack.wait_for_phase(training.id, FINAL)
    assert (failed.phase, failed.reason) == (pb.PHASE_FAILED, "DeadlineExceeded")


def test_an_unschedulable_training_is_queued_with_the_schedulers_reason(stack: Stack) -> None:
    spec = lora_spec()
    spec.resources.gpus = 8  # no node has more than 4
    training = stack.create(spec)
    queued = wait_for(
        "the scheduler's reason",
        lambda: (t := stack.get(training.id)).reason == "Unschedulable" and t,
    )
    assert queued.phase == pb.PHASE_QUEUED
    assert "nvidia.com/gpu" in queued.message

    canceled = stack.cancel(training.id)
    assert canceled.cancel_requested
    assert stack.wait_for_phase(training.id, FINAL).phase == pb.PHASE_CANCELED
    wait_for(
        "the Job to be gone", lambda: all(j.metadata.name != queued.job_name for j in stack.jobs())
    )
    wait_for("its pods to be gone", lambda: stack.pods_of(queued.job_name) == [])


def test_cancel_while_running_removes_the_job_and_its_pods(stack: Stack) -> None:
    training = stack.create(lora_spec())
    stack.wait_for_phase(training.id, {pb.PHASE_RUNNING})
    stack.cancel(training.id)
    canceled = stack.wait_for_phase(training.id, FINAL)
    assert (canceled.phase, canceled.reason) == (pb.PHASE_CANCELED, "Canceled")
    wait_for(
        "the Job to be gone",
        lambda: all(j.metadata.name != canceled.job_name for j in stack.jobs()),
    )
    wait_for("its pods to be gone", lambda: stack.pods_of(canceled.job_name) == [])


def test_cancel_of_a_finished_training_changes_nothing(stack: Stack) -> None:
    training = stack.create(lora_spec())
    done = stack.wait_for_phase(training.id, FINAL)
    after = stack.cancel(training.id)
    assert after.phase == done.phase == pb.PHASE_COMPLETED
    assert not after.cancel_requested
    assert after.generation == done.generation


def test_an_unknown_training_is_not_found(stack: Stack) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stack.get("0" * 20)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
