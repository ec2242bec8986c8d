"""Retention with the real controller: once the retention period is over, its
leader removes a finished training; reading it then says so, and its Job,
left behind, is removed as an orphan without bringing the training back."""

from __future__ import annotations

import grpc
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from devstack.stack import Stack
from devstack.waiting import wait_for

FINAL = {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED}


def read_error(stack: Stack, training_id: str) -> grpc.RpcError | None:
    try:
        stack.get(training_id)
    except grpc.RpcError as err:
        return err
    return None


def test_the_leader_removes_a_training_once_its_retention_period_is_over(stack: Stack) -> None:
    stack.controllers["controller-0"].stop()
    stack.start_controller(
        "controller-0",
        TC_RETENTION_SECONDS="2",
        TC_RETENTION_INTERVAL_SECONDS="0.5",
        TC_TTL_SECONDS_AFTER_FINISHED="3600",  # its Job outlives it
    )
    training = stack.create(lora_spec())
    done = stack.wait_for_phase(training.id, FINAL)
    assert done.phase == pb.PHASE_COMPLETED

    wait_for("the leader to remove it", lambda: read_error(stack, training.id), timeout=60)
    error = read_error(stack, training.id)
    assert error is not None
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "removed after the retention period" in (error.details() or "")
    # Its Job, kept for the hour, is an orphan now: removed, and the training
    # stays removed.
    wait_for(
        "its Job to be removed as an orphan",
        lambda: all(j.metadata.name != done.job_name for j in stack.jobs()),
        timeout=90,
    )
    error = read_error(stack, training.id)
    assert error is not None
    assert error.code() == grpc.StatusCode.NOT_FOUND
    stack.controllers["controller-0"].wait_for_log("retention")
