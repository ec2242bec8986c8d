"""Names and labels that tie a Job to its training."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # objects.py reads DEADLINE_FROM_ANNOTATION from here
    from trainconductor_controller.objects import Job

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "train-conductor"
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
TRAINING_ID_LABEL = "trainconductor.dev/training-id"
# Which install made the Job (its controllers' Lease name): installs sharing
# a namespace must not take each other's Jobs for orphans.
INSTANCE_LABEL = "trainconductor.dev/instance"
GENERATION_ANNOTATION = "trainconductor.dev/generation"
TRACEPARENT_ANNOTATION = "trainconductor.dev/traceparent"
# The Job's startTime its activeDeadlineSeconds was computed from: Kubernetes
# sets a new startTime when a suspended Job resumes, restarting the count.
DEADLINE_FROM_ANNOTATION = "trainconductor.dev/deadline-counted-from"
CONTAINER_NAME = "trainer"
# Kueue's: the labels that queue a Job (its LocalQueue and its
# WorkloadPriorityClass), and the one on the Workload Kueue makes for a Job,
# the Job's uid.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
_JOB_PREFIX = "train-"


def job_name(training_id: str) -> str:
    """Derived from the id, so a create repeated after a crash finds the
    first Job (AlreadyExists) instead of making a second."""
    return f"{_JOB_PREFIX}{training_id}"


def training_id_of_job(name: str) -> str:
    """The training whose Job is named `name`; '' for a Job not named by `job_name`."""
    return name.removeprefix(_JOB_PREFIX) if name.startswith(_JOB_PREFIX) else ""


def made_by(job: Job, instance: str) -> bool:
    """Whether `instance` made the Job; one labelled by no install is taken
    as its own (Jobs made before the label existed)."""
    made = job.get("metadata", {}).get("labels", {}).get(INSTANCE_LABEL)
    return made is None or made == instance
