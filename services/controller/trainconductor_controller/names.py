"""Names and labels that tie a Job to its training."""

from __future__ import annotations

import re
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
# Which attempt of its training a Job is (1, 2, ...), on the Job.
ATTEMPT_ANNOTATION = "trainconductor.dev/attempt"
# Kubernetes': a Job's pods carry its name, and an Indexed Job's their index
# (the rank), as a label and as an annotation.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# Kueue's: the labels that queue a Job (its LocalQueue and its
# WorkloadPriorityClass), and the one on the Workload Kueue makes for a Job,
# the Job's uid.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
_JOB_PREFIX = "train-"
_JOB_NAME = re.compile(r"^train-(?P<id>[0-9a-f]{20})(-a(?P<attempt>[1-9][0-9]*))?$")


def job_name(training_id: str, attempt: int = 1) -> str:
    """Derived from the id and the attempt, so a create repeated after a
    crash finds the attempt's Job (AlreadyExists) instead of making a second.
    The first attempt's is the id's alone; the n-th ends in -a<n>. (With the
    20 characters of an id, an Indexed Job's pod hostnames, <job>-<rank>,
    stay within the 63 characters of a DNS label.)"""
    name = f"{_JOB_PREFIX}{training_id}"
    return name if attempt <= 1 else f"{name}-a{attempt}"


def training_id_of_job(name: str) -> str:
    """The training whose Job is named `name`; '' for a Job not named by `job_name`."""
    match = _JOB_NAME.fullmatch(name)
    return match["id"] if match else ""


def attempt_of_job(name: str) -> int:
    """Which attempt the Job named `name` is; 0 for a Job not named by `job_name`."""
    match = _JOB_NAME.fullmatch(name)
    if match is None:
        return 0
    return int(match["attempt"] or 1)


def made_by(job: Job, instance: str) -> bool:
    """Whether `instance` made the Job; one labelled by no install is taken
    as its own (Jobs made before the label existed)."""
    made = job.get("metadata", {}).get("labels", {}).get(INSTANCE_LABEL)
    return made is None or made == instance
