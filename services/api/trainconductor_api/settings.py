"""The API service's settings: one frozen object, loaded once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from trainconductor_api.queueing import QueuePolicy, is_priority_name, is_queue_name
from trainconductor_core.settings import CommonSettings

AuthMode = Literal["none", "token-review", "mtls", "static-token"]


class ApiSettings(CommonSettings):
    grpc_host: str = Field("0.0.0.0", description="Address the gRPC port binds to.")
    grpc_port: int = Field(
        50051, ge=0, le=65535, description="gRPC: both services, health, reflection."
    )
    grpc_listeners: int = Field(
        8,
        ge=1,
        le=32,
        description="gRPC servers in this process sharing the gRPC port (and the progress "
        "port): calls that arrive together are taken together, and their Redis commands "
        "go out in one pipeline. 1 keeps the port to one server.",
    )
    http_port: int = Field(9464, ge=0, le=65535, description="HTTP: /metrics.")
    drain_seconds: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM: how long in-flight calls may finish after health "
        "turns NOT_SERVING (keep below the pod's terminationGracePeriodSeconds).",
    )
    max_message_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest request or response message accepted."
    )
    max_connection_age_seconds: float = Field(
        300.0,
        gt=0,
        description="Connections are closed after this age so clients rebalance over "
        "replicas after scaling.",
    )
    health_probe_seconds: float = Field(
        1.0, gt=0, description="How often Redis is pinged to set the health status."
    )
    request_id_ttl_seconds: int = Field(
        7 * 24 * 3600, gt=0, description="How long a request_id keeps returning its training."
    )
    watch_poll_ms: int = Field(
        2000, gt=0, description="Longest blocking read of a watch before it checks the client."
    )
    max_watches: int | None = Field(
        None,
        gt=0,
        description="Watches served at once; past it, RESOURCE_EXHAUSTED. Each holds a Redis "
        "connection, so it must stay below redis_max_connections; unset: three quarters of it.",
    )
    max_gpus_per_training: int = Field(
        8, ge=0, description="Most GPUs one training may ask for, per node."
    )
    max_nodes_per_training: int = Field(
        64,
        ge=1,
        le=1000,
        description="Most nodes one training may run on (spec.resources.nodes); each runs one "
        "pod of its Indexed Job. 1 allows single-node trainings only.",
    )
    max_retries: int = Field(
        10,
        ge=0,
        le=1000,
        description="Most retries a training may ask for (spec.max_retries): failed attempts "
        "made again as a new Job. Disruptions (preemption, eviction, a drained node) spend "
        "none; the controller's user_error_exit_codes are never retried.",
    )
    default_max_retries: int = Field(
        0,
        ge=0,
        description="Retries of a training that names none (and of the legacy contract's); "
        "0 fails a training at its first failure that is not a disruption. At most "
        "max_retries.",
    )
    allowed_path_prefixes: list[str] = Field(
        default_factory=list,
        description="When set, output_path and data_path must start with one of these "
        "(e.g. 's3://models/', '/mnt/data/').",
    )

    # TLS on the gRPC port. The files are read again when they change, so a
    # renewed certificate (cert-manager, a rotated Secret) needs no restart.
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate chain of the gRPC port; unset serves plaintext."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle; when set, every client must present a certificate it "
        "signed (mTLS). Needs tls_cert_file.",
    )

    # Authentication: who is calling.
    auth_modes: list[AuthMode] = Field(
        default_factory=lambda: list[AuthMode](["none"]),
        min_length=1,
        description="How callers are identified; several may be listed. 'token-review': "
        "Kubernetes ServiceAccount bearer tokens checked with the TokenReview API; 'mtls': "
        "the client certificate (CN is the user, O entries the groups); 'static-token': "
        "bearer tokens listed (hashed) in static_tokens_file; 'none': trusts the x-tc-user "
        "metadata and lets every caller see every training, for local development only "
        "(it can not be combined with the others).",
    )
    auth_mode: AuthMode | None = Field(
        None, description="Deprecated, one mode: the same as auth_modes=[auth_mode]."
    )
    kubeconfig: Path | None = Field(
        None,
        description="Kubeconfig for the TokenReview calls of 'token-review' and the reads of "
        "trainings' logs (pod_logs_enabled); unset means the pod's in-cluster service "
        "account (which needs the system:auth-delegator role for TokenReview).",
    )
    token_review_audience: str = Field(
        "train-conductor",
        min_length=1,
        description="Audience a ServiceAccount token must be issued for (the projected "
        "token's `audience`); tokens for other audiences are refused.",
    )
    token_review_cache_seconds: float = Field(
        10.0,
        ge=0,
        description="How long a TokenReview answer (accepted or refused) is reused for the "
        "same token; bounds both the apiserver's load and how late a revocation is seen.",
    )
    token_review_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait for the apiserver's TokenReview answer."
    )
    static_tokens_file: Path | None = Field(
        None,
        description="For 'static-token': lines of `sha256:<hex digest of the token> <user> "
        "[group,group]`; '#' starts a comment. Read again when it changes.",
    )

    # Authorization: who may see what.
    admin_groups: list[str] = Field(
        default_factory=list,
        description="Members of these groups see, watch and cancel every training; everyone "
        "else only their own.",
    )

    # Fairness: how much one caller may ask for.
    create_rate_per_second: float = Field(
        0.0,
        ge=0,
        description="Trainings one identity may create per second, per API replica (token "
        "bucket refill); 0 turns the limit off.",
    )
    create_burst: int = Field(
        20, ge=1, description="Creates one identity may make at once before the rate applies."
    )
    max_active_trainings_per_owner: int = Field(
        0,
        ge=0,
        description="Most trainings one owner may have that have not finished (pending, "
        "queued, running, suspended), across all replicas; 0 means no cap.",
    )

    # Logs: the trainings' pods' logs, read from Kubernetes.
    pod_logs_enabled: bool = Field(
        False,
        description="StreamTrainingLogs reads the trainings' pods' logs from Kubernetes, in "
        "trainings_namespace (through kubeconfig, or the pod's service account, which needs "
        "get on pods/log and get/list on pods there). Off, it serves only the ends of logs "
        "the controller kept when trainings finished.",
    )
    log_line_max_bytes: int = Field(
        16 * 1024,
        ge=256,
        description="Longest log line sent; a longer one is cut (and marked truncated).",
    )
    log_lines_per_second: float = Field(
        2000.0, gt=0, description="Most log lines one stream sends per second, on average."
    )
    log_streams_max: int = Field(
        64,
        ge=1,
        description="Log streams this replica reads from Kubernetes at once (each holds a "
        "thread and a connection while it reads); past it, RESOURCE_EXHAUSTED.",
    )
    log_buffered_batches: int = Field(
        4,
        ge=1,
        description="Reads of a log (64 KiB each at most) a stream holds ahead of a slow "
        "client before it stops reading from Kubernetes.",
    )
    log_poll_seconds: float = Field(
        2.0,
        gt=0,
        description="How long a followed log may be quiet before it is read again and its "
        "pod's state checked; how often a followed log looks for a new attempt.",
    )

    # Queues: Kueue LocalQueues the trainings' Jobs wait in for quota.
    queues_enabled: bool = Field(
        False,
        description="The installation runs Kueue and its trainings wait in its queues: "
        "spec.queue and spec.priority are taken. Off, both are refused (INVALID_ARGUMENT "
        "naming the field) and every Job runs at once.",
    )
    default_queue: str = Field(
        "",
        description="LocalQueue of a training that names none and whose owner is in no group "
        "of group_default_queues; '' runs such a training without a queue.",
    )
    default_priority: str = Field(
        "",
        description="WorkloadPriorityClass of a queued training that names none; '' leaves "
        "it to the queue's default.",
    )
    group_default_queues: dict[str, str] = Field(
        default_factory=dict,
        description="Default LocalQueue per group of the owner (group: queue), before "
        "default_queue; with several matching groups, the first listed wins.",
    )

    # Progress reports from the trainings' pods (ProgressService).
    progress_token_audience: str = Field(
        "train-conductor-progress",
        min_length=1,
        description="Audience of the projected token a training pod reports progress with "
        "(the controller's progress_token_audience must be the same). Under auth mode 'none' "
        "no token is asked for and a report names its training.",
    )
    progress_token_cache_seconds: float = Field(
        60.0,
        ge=0,
        description="How long the TokenReview answer of a training pod's token is reused: "
        "each reporting pod costs the apiserver one review per this many seconds (the token "
        "is bound to the pod, and dies with it).",
    )
    trainings_namespace: str = Field(
        "default",
        min_length=1,
        description="Namespace the trainings' pods run in (the controller's namespace): only "
        "a pod there may report progress.",
    )
    progress_event_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="Fewest seconds between two progress events of one training on the "
        "watches; reports between them update the training only.",
    )
    progress_rate_per_second: float = Field(
        2.0,
        gt=0,
        description="Progress reports one training may make per second, per API replica "
        "(token bucket refill); past it, RESOURCE_EXHAUSTED.",
    )
    progress_burst: int = Field(
        10, ge=1, description="Progress reports one training may make at once."
    )

    progress_grpc_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Also serve ProgressService alone on this port, without TLS, for training "
        "pods that can not meet the gRPC port's TLS (client certificates, say); unset: on the "
        "gRPC port only.",
    )
    kubeflow_status_enabled: bool = Field(
        False,
        description="Also take progress in Kubeflow Trainer's protocol (KEP-2779: POST "
        ".../trainjobs/{name}/status over HTTP), so trainer images made for it (transformers' "
        "KubeflowCallback, the Kubeflow SDK) report unchanged; on kubeflow_status_port.",
    )
    kubeflow_status_port: int = Field(
        8082, ge=0, le=65535, description="HTTP port of Kubeflow Trainer's progress protocol."
    )

    @model_validator(mode="before")
    @classmethod
    def _single_mode_is_a_list_of_one(cls, data: Any) -> Any:
        # The chart of an earlier release writes `auth_mode`; it keeps working.
        if isinstance(data, dict) and data.get("auth_mode") and not data.get("auth_modes"):
            data = {**data, "auth_modes": [data["auth_mode"]]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ApiSettings:
        if self.default_max_retries > self.max_retries:
            raise ValueError("default_max_retries must be at most max_retries")
        modes = set(self.auth_modes)
        if self.auth_mode is not None and self.auth_mode not in modes:
            raise ValueError("auth_mode and auth_modes disagree; set auth_modes only")
        if "none" in modes and len(modes) > 1:
            # A caller without credentials would be trusted under any name,
            # which makes the other modes pointless.
            raise ValueError("auth_modes 'none' can not be combined with other modes")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file are set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")
        if "mtls" in modes and self.tls_client_ca_file is None:
            raise ValueError("auth_modes 'mtls' needs tls_client_ca_file")
        if "static-token" in modes and self.static_tokens_file is None:
            raise ValueError("auth_modes 'static-token' needs static_tokens_file")
        if self.watch_poll_ms >= self.redis_socket_timeout_seconds * 1000:
            # A watch's blocking read would outlast the socket timeout and
            # count as Redis being down: every quiet watch would fail.
            raise ValueError(
                f"watch_poll_ms ({self.watch_poll_ms}) must be shorter than "
                f"redis_socket_timeout_seconds ({self.redis_socket_timeout_seconds:g} s)"
            )
        queue_defaults = [self.default_queue, self.default_priority, *self.group_default_queues]
        if not self.queues_enabled and any(queue_defaults):
            raise ValueError(
                "default_queue, default_priority and group_default_queues need queues_enabled"
            )
        for queue in [self.default_queue, *self.group_default_queues.values()]:
            if queue and not is_queue_name(queue):
                raise ValueError(f"{queue[:64]!r} is not a LocalQueue name (a DNS-1123 label)")
        if self.default_priority and not is_priority_name(self.default_priority):
            raise ValueError("default_priority is not a WorkloadPriorityClass name")
        if self.log_line_max_bytes * 4 > self.max_message_bytes:
            # A response carries a line at least, with room to spare.
            raise ValueError(
                f"log_line_max_bytes ({self.log_line_max_bytes}) must be at most a quarter of "
                f"max_message_bytes ({self.max_message_bytes})"
            )
        if self.max_watches is not None and self.max_watches >= self.redis_max_connections:
            # Watches would take every connection; the other calls need some.
            raise ValueError(
                f"max_watches ({self.max_watches}) must be below redis_max_connections "
                f"({self.redis_max_connections})"
            )
        return self

    @property
    def watch_limit(self) -> int:
        return self.max_watches or max(self.redis_max_connections * 3 // 4, 1)

    @property
    def queue_policy(self) -> QueuePolicy:
        return QueuePolicy.of(
            enabled=self.queues_enabled,
            default_queue=self.default_queue,
            default_priority=self.default_priority,
            group_queues=self.group_default_queues,
        )

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def authentication_enabled(self) -> bool:
        return self.auth_modes != ["none"]
