"""The controller's Prometheus metrics. Label values are bounded: phases,
verbs, resources, codes, causes and queue names (operator-defined), never
training ids."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from trainconductor_core.phases import Phase

registry: CollectorRegistry = REGISTRY  # includes the process and platform collectors

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Waits that are short when all is well and long after an outage or under a
# backlog, which a p99 must still show.
_WAIT = (*_LATENCY, 60, 300, 900, 3600)
_LONG = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400)

RECONCILES = Counter(
    "trainconductor_controller_reconciles_total",
    "Reconciles of one training, by result: success, error, not_leader.",
    ["result"],
)
RECONCILE_SECONDS = Histogram(
    "trainconductor_controller_reconcile_duration_seconds",
    "Time to reconcile one training.",
    buckets=_LATENCY,
)
QUEUE_DEPTH = Gauge(
    "trainconductor_controller_workqueue_depth", "Trainings waiting to be reconciled."
)
QUEUE_ADDS = Counter(
    "trainconductor_controller_workqueue_adds_total", "Trainings added to the queue."
)
QUEUE_RETRIES = Counter(
    "trainconductor_controller_workqueue_retries_total", "Reconciles retried after an error."
)
QUEUE_WAIT_SECONDS = Histogram(
    "trainconductor_controller_workqueue_wait_seconds",
    "Time a training waited in the queue before a worker took it.",
    buckets=_WAIT,
)
TRAININGS = Gauge(
    "trainconductor_trainings", "Recorded trainings by phase (from the store).", ["phase"]
)
STALLED = Gauge(
    "trainconductor_trainings_stalled",
    "RUNNING trainings whose trainer reported progress before and has not for longer than "
    "progress_stall_seconds (set by the leader; 0 elsewhere).",
)
OLDEST_PENDING_SECONDS = Gauge(
    "trainconductor_trainings_oldest_pending_seconds",
    "Time since the earliest PENDING training was submitted (0: none is PENDING). A training "
    "stays PENDING while its Job can not be created: refused by the Kubernetes API (a quota, "
    "an invalid spec) or the controller down.",
)
FAILED_ATTEMPTS = Counter(
    "trainconductor_controller_failed_attempts_total",
    "Attempts of trainings that failed, by cause (disruption, user_error, retryable) and "
    "what followed (restarted: the next attempt was made; failed: the training FAILED).",
    ["cause", "outcome"],
)
PHASE_TRANSITIONS = Counter(
    "trainconductor_controller_phase_transitions_total",
    "Phase changes the controller recorded.",
    ["from_phase", "to_phase"],
)
SUBMIT_TO_JOB_SECONDS = Histogram(
    "trainconductor_controller_submit_to_job_created_seconds",
    "Time from CreateTraining to its Job being created.",
    buckets=_WAIT,
)
SUBMIT_TO_RUNNING_SECONDS = Histogram(
    "trainconductor_controller_submit_to_running_seconds",
    "Time from CreateTraining to the training running (PENDING and QUEUED together).",
    buckets=_LONG,
)
RUN_SECONDS = Histogram(
    "trainconductor_controller_run_seconds",
    "Run time of finished trainings, by outcome (COMPLETED, FAILED, CANCELED).",
    ["outcome"],
    buckets=_LONG,
)
KUBE_REQUESTS = Counter(
    "trainconductor_controller_kubernetes_requests_total",
    "Kubernetes API requests by verb, resource and HTTP code (0: no answer).",
    ["verb", "resource", "code"],
)
KUBE_REQUEST_SECONDS = Histogram(
    "trainconductor_controller_kubernetes_request_duration_seconds",
    "Kubernetes API request latency.",
    ["verb", "resource"],
    buckets=_LATENCY,
)
WATCH_RESTARTS = Counter(
    "trainconductor_controller_watch_restarts_total",
    "Watches restarted, by resource and cause: gone (410, relisted), error, timeout.",
    ["resource", "cause"],
)
LEADER = Gauge("trainconductor_controller_leader", "1 while this replica holds the Lease.")
LEADER_TRANSITIONS = Counter(
    "trainconductor_controller_leader_transitions_total", "Times this replica became leader."
)
CHANGE_FEED_LAG = Gauge(
    "trainconductor_controller_change_feed_pending",
    "Change-feed entries not yet acknowledged (delivered or not).",
)

SUBMIT_TO_ADMITTED_SECONDS = Histogram(
    "trainconductor_queue_submit_to_admitted_seconds",
    "Time from CreateTraining to Kueue admitting the training's Job, by queue (its first "
    "admission only).",
    ["queue"],
    buckets=_WAIT,
)
QUEUE_WAITING = Gauge(
    "trainconductor_queue_waiting_trainings",
    "Trainings waiting in each queue, by reason (WaitingForQuota, QueueUnavailable, "
    "WaitingForWorkload, RequeueBackoff, PriorityUnavailable), as the leader last saw them.",
    ["queue", "reason"],
)
QUEUE_OLDEST_WAITING_SECONDS = Gauge(
    "trainconductor_queue_oldest_waiting_seconds",
    "Time since the earliest submitted training still waiting in each queue was submitted "
    "(0: none waits).",
    ["queue"],
)
QUEUE_PREEMPTIONS = Counter(
    "trainconductor_queue_preemptions_total",
    "Trainings Kueue preempted, by queue and Kueue's reason (InClusterQueue, "
    "InCohortReclamation, ...).",
    ["queue", "reason"],
)

RETENTION_REMOVED = Counter(
    "trainconductor_controller_retention_removed_total",
    "Finished trainings removed from Redis after the retention period.",
)
RETENTION_PASS_SECONDS = Histogram(
    "trainconductor_controller_retention_pass_duration_seconds",
    "Time one retention pass took (paced by retention_rate_per_second).",
    buckets=_LONG,
)
RETENTION_LAST_PASS = Gauge(
    "trainconductor_controller_retention_last_pass_timestamp_seconds",
    "When the last retention pass ended (Unix time; 0: none yet).",
)


def _initialize() -> None:
    """Series with known label values exist from the start, at 0, so that
    rates and alerts see the first increment instead of a series appearing."""
    for result in ("success", "error", "not_leader"):
        RECONCILES.labels(result)
    for resource in ("jobs", "pods"):
        for cause in ("gone", "error", "timeout"):
            WATCH_RESTARTS.labels(resource, cause)
    # A new leader's first transitions count too (alerts take increase()).
    for source in Phase:
        if not source.is_final:
            for target in Phase:
                if target is not source:
                    PHASE_TRANSITIONS.labels(source, target)


_initialize()
