"""Clients of both revisions of the original's contract, end to end: every
field they send is found on the Job the controller makes, in the trainer's
configuration or as the GPU limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from devstack.stack import Stack
from devstack.waiting import wait_for
from tests.support.legacy_revisions import (
    REVISIONS,
    TRAININGS,
    LegacyTraining,
    Revision,
    compile_revision,
)
from trainconductor_controller.jobs import CONFIG_ENV
from trainconductor_controller.names import job_name

GPU = "nvidia.com/gpu"  # the controller's default GPU resource


@pytest.fixture(scope="module")
def revisions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Revision]:
    directory: Path = tmp_path_factory.mktemp("revisions")
    return {
        name: compile_revision(messages, directory / name) for name, messages in REVISIONS.items()
    }


def made_job(stack: Stack, training_id: str) -> client.V1Job:
    """The Job of the training, read as soon as the controller made it (it
    is deleted once the training finished and its verdict is recorded)."""
    name = job_name(training_id)
    job: client.V1Job = wait_for(
        f"the controller to make Job {name}",
        lambda: next((j for j in stack.jobs() if j.metadata.name == name), None),
    )
    return job


@pytest.mark.parametrize("training", [pytest.param(t, id=t.name) for t in TRAININGS])
def test_every_field_a_legacy_client_sends_is_on_the_job(
    stack: Stack, revisions: dict[str, Revision], training: LegacyTraining
) -> None:
    revision = revisions[training.revision]
    submitted = revision.method(stack.channel, "Train")(training.request(revision), timeout=10)
    container = made_job(stack, submitted.training_id).spec.template.spec.containers[0]
    env = {variable.name: variable.value or "" for variable in container.env}
    config, gpus = training.expected()
    assert json.loads(env[CONFIG_ENV]) == config
    assert (container.resources.limits or {}).get(GPU) == (str(gpus) if gpus else None)
