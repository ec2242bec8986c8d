"""The controller's settings: one frozen object, loaded once at start.

The image and the command that run a training are the operator's choice,
made here (chart values), never the client's.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from trainconductor_core.settings import CommonSettings


class PvcVolume(BaseModel):
    """A PersistentVolumeClaim mounted into every training's container."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    claim_name: str
    mount_path: str
    read_only: bool = False


class ControllerSettings(CommonSettings):
    # Kubernetes
    kubeconfig: Path | None = Field(
        None, description="Kubeconfig file; unset means in-cluster service account."
    )
    namespace: str = Field("default", description="Namespace the training Jobs run in.")
    # Serving
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP: /metrics, /healthz, /readyz.")
    # Leader election
    identity: str = Field(
        default_factory=socket.gethostname, description="This replica's name in the Lease."
    )
    lease_name: str = Field(
        "train-conductor-controller",
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="The Lease's name. It also labels this install's Jobs, so that installs "
        "sharing a namespace leave each other's alone.",
    )
    lease_namespace: str = Field("default", description="Namespace of the Lease.")
    lease_duration_seconds: int = Field(
        15,
        ge=2,
        description="How long a leader's claim lasts without renewal; a new "
        "leader takes over within this after the leader dies.",
    )
    renew_deadline_seconds: int = Field(
        10, ge=2, description="A leader that could not renew for this long stops acting."
    )
    retry_period_seconds: int = Field(2, ge=1, description="Interval between Lease attempts.")
    # Work
    workers: int = Field(
        32,
        ge=1,
        le=64,
        description="Trainings reconciled at once, each with a thread and an API server "
        "connection of its own.",
    )
    resync_seconds: float = Field(
        300.0, gt=0, description="Full resync of every unfinished training (safety net)."
    )
    event_coalesce_seconds: float = Field(
        0.1,
        ge=0,
        le=5,
        description="What Kubernetes reports of a training is reconciled this long after, "
        "once for all it reported meanwhile (0: at once, once each).",
    )
    retry_base_seconds: float = Field(0.05, gt=0, description="First retry delay of a key.")
    retry_max_seconds: float = Field(30.0, gt=0, description="Cap of a key's retry delay.")
    consumer_group: str = Field("controller", description="Change-feed consumer group.")
    change_claim_idle_seconds: float = Field(
        30.0,
        gt=0,
        description="Unacknowledged change-feed entries older than this are "
        "taken over from the consumer that read them (it probably crashed).",
    )
    # Jobs
    image: str = Field(
        "quay.io/foundation-model-stack/fms-hf-tuning:latest", description="Trainer image."
    )
    command: list[str] = Field(
        default_factory=lambda: ["python", "/app/accelerate_launch.py"],
        description="Trainer command; the training's config arrives as JSON in the environment.",
    )
    service_account: str = Field("", description="Service account of training pods; '' = default.")
    default_cpu: str = Field("2", description="CPU request when a training names none.")
    default_memory: str = Field("8Gi", description="Memory request when a training names none.")
    gpu_resource: str = Field("nvidia.com/gpu", description="Extended resource name of GPUs.")
    volumes: list[PvcVolume] = Field(default_factory=list, description="PVCs mounted in pods.")
    image_pull_secrets: list[str] = Field(default_factory=list, description="Pull secret names.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod node selector.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Pod tolerations (Kubernetes form)."
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations of every training pod (a service mesh's opt-out, a "
        "scheduler's hints).",
    )
    priority_class: str = Field("", description="PriorityClass of training pods; '' = none.")
    user_error_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] = Field(
        default_factory=lambda: [1],
        description="Exit codes of the trainer that mean the user's error (a bad argument or "
        "dataset: fms-hf-tuning exits 1): the training FAILS at once with that rank's "
        "termination message, without a retry. Other failures spend one retry; disruptions "
        "(preemption, eviction, a drained or lost node) spend none.",
    )
    max_disruption_restarts: int = Field(
        20,
        ge=0,
        description="Restarts after disruptions a training gets without spending a retry; "
        "past them a disruption spends one, so that a node that fails over and over can not "
        "keep a training restarting for ever.",
    )
    master_port: int = Field(
        29500,
        ge=1,
        le=65535,
        description="Port of a multi-node training's rendezvous on its rank 0 (MASTER_PORT, "
        "PET_MASTER_PORT); torchrun's own default.",
    )
    default_deadline_seconds: int = Field(
        0,
        ge=0,
        description="How long a training that names no deadline may run, from its trainer's "
        "start; 0 = no limit.",
    )
    ttl_seconds_after_finished: int = Field(
        3600,
        ge=0,
        description="A finished training's Job is deleted this long after the training "
        "finished, once its final status is recorded (the status stays in Redis for "
        "retention_seconds).",
    )
    kept_log_bytes: int = Field(
        64 * 1024,
        ge=0,
        le=1024 * 1024,
        description="When a training finishes, the end of each rank's log kept with it in "
        "Redis (bytes per rank, whole lines), so that its log outlives its pods; removed "
        "with the training by retention. 0 keeps none.",
    )
    # Queues: Kueue's, when the installation runs it.
    queues_enabled: bool = Field(
        False,
        description="Kueue runs in the cluster and queued trainings' Jobs wait in its "
        "LocalQueues: the controller watches Kueue's Workloads in its namespace, holds and "
        "releases them, and reads queue positions from Kueue's visibility API.",
    )
    queue_position_refresh_seconds: float = Field(
        2.0,
        gt=0,
        description="Seconds between reads of the positions in each LocalQueue with waiting "
        "trainings (one visibility API call per queue); a training's position is written "
        "only when it changes.",
    )
    # Retention: what finished long ago leaves Redis.
    retention_seconds: int = Field(
        30 * 24 * 3600,
        ge=0,
        description="How long a finished training (COMPLETED, FAILED, CANCELED) stays in Redis "
        "after it finished, in seconds; then the leader removes it with its events and index "
        "entries, so that Redis does not grow for ever. 0 keeps every training for ever.",
    )
    retention_tombstone_seconds: int = Field(
        30 * 24 * 3600,
        ge=0,
        description="How long a removed training's id is remembered (a key of about 100 "
        "bytes), so that reading it answers that it was removed after the retention period "
        "rather than that it never existed; 0 remembers none.",
    )
    retention_interval_seconds: float = Field(
        600.0,
        gt=0,
        description="Seconds between the leader's retention passes; each removes what "
        "finished more than retention_seconds ago.",
    )
    retention_batch: int = Field(
        100,
        ge=1,
        le=1000,
        description="Trainings examined per batch of a retention pass (one pipeline, one "
        "script each): bounds how long one batch keeps Redis busy (a few milliseconds).",
    )
    retention_rate_per_second: float = Field(
        500.0,
        gt=0,
        description="Most trainings a retention pass examines per second, so that a backlog "
        "(the first pass after retention is turned on) leaves Redis to the API: 100,000 "
        "take under 4 minutes.",
    )
    # Progress reports from the trainings' pods.
    progress_address: str = Field(
        "",
        description="host:port of the API's ProgressService as a training pod reaches it "
        "(the chart sets the API's Service); given to every training pod (TC_PROGRESS_ADDRESS) "
        "with a projected token to report with. '' gives neither: no progress reports.",
    )
    kubeflow_status_address: str = Field(
        "",
        description="host:port of the API's Kubeflow Trainer progress endpoint (its "
        "kubeflow_status_port) as a training pod reaches it; given to every training pod as "
        "KUBEFLOW_TRAINER_SERVER_URL with KUBEFLOW_TRAINER_SERVER_TOKEN and _CA_CERT, so that "
        "trainers made for Kubeflow Trainer report unchanged. '' gives none.",
    )
    progress_token_audience: str = Field(
        "train-conductor-progress",
        min_length=1,
        description="Audience of the projected token of training pods; the API's "
        "progress_token_audience must be the same.",
    )
    progress_token_expiration_seconds: int = Field(
        3600,
        ge=600,
        description="Lifetime of the projected token (the kubelet renews it at 80%).",
    )
    progress_stall_seconds: float = Field(
        900.0,
        ge=0,
        description="A RUNNING training whose trainer reported progress before and has not "
        "for this long is marked stalled (condition Stalled, a Stalled event, the "
        "trainconductor_trainings_stalled gauge); 0 never marks one.",
    )
    progress_stall_check_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds between the leader's looks for stalled trainings.",
    )
    finished_events_kept: int = Field(
        10,
        ge=1,
        description="Events a finished training keeps for WatchTraining (its last ones); the "
        "rest, and the room its event stream kept for more, are freed when it finishes.",
    )
