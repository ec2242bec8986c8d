"""Names and labels that tie a Job to its training."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "train-conductor"
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
TRAINING_ID_LABEL = "trainconductor.dev/training-id"
GENERATION_ANNOTATION = "trainconductor.dev/generation"
TRACEPARENT_ANNOTATION = "trainconductor.dev/traceparent"
CONTAINER_NAME = "trainer"


def job_name(training_id: str) -> str:
    """Derived from the id, so a create repeated after a crash finds the
    first Job (AlreadyExists) instead of making a second."""
    return f"train-{training_id}"
