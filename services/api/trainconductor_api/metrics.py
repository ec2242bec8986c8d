"""The API's Prometheus metrics, in one registry served on the HTTP port.

gRPC metrics keep the `grpc_server_*` names and labels of go-grpc-prometheus
so that existing dashboards work; the project's own carry `trainconductor_`.
"""

from __future__ import annotations

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

registry: CollectorRegistry = REGISTRY  # includes the process and platform collectors

_GRPC = ["grpc_type", "grpc_service", "grpc_method"]

GRPC_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server.", _GRPC, registry=registry
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    [*_GRPC, "grpc_code"],
    registry=registry,
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status, in seconds.",
    _GRPC,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=registry,
)
GRPC_MSG_RECEIVED = Counter(
    "grpc_server_msg_received_total", "Messages received from clients.", _GRPC, registry=registry
)
GRPC_MSG_SENT = Counter(
    "grpc_server_msg_sent_total", "Messages sent to clients.", _GRPC, registry=registry
)
TRAININGS_SUBMITTED = Counter(
    "trainconductor_api_trainings_submitted_total",
    "CreateTraining calls by outcome: created, deduplicated (a retried request_id), rejected.",
    ["outcome"],
    registry=registry,
)
ACTIVE_WATCHES = Gauge(
    "trainconductor_api_active_watches",
    "Watch streams open now.",
    ["grpc_method"],
    registry=registry,
)
LOG_LINES_SENT = Counter(
    "trainconductor_api_log_lines_sent_total",
    "Trainings' log lines sent (StreamTrainingLogs), by where they came from (pod: read from "
    "Kubernetes; kept: the end kept with a finished training) and whether they were cut at "
    "log_line_max_bytes.",
    ["source", "truncated"],
    registry=registry,
)
REDIS_UP = Gauge(
    "trainconductor_api_redis_up",
    "1 when the last health probe reached Redis.",
    registry=registry,
)
AUTHENTICATIONS = Counter(
    "trainconductor_api_authentications_total",
    "Calls by authentication result: accepted, refused (UNAUTHENTICATED), unavailable "
    "(the apiserver could not be asked).",
    ["result"],
    registry=registry,
)
LIMITED = Counter(
    "trainconductor_api_limited_total",
    "Creates refused by a limit: rate (the identity's token bucket), active (the "
    "owner's cap on unfinished trainings) or redis_full (Redis out of memory).",
    ["limit"],
    registry=registry,
)
PROGRESS_REPORTS = Counter(
    "trainconductor_api_progress_reports_total",
    "Progress reports by outcome: recorded, event (recorded and sent to the watches), "
    "invalid, limited (the training's rate), refused (the token or its pod), finished.",
    ["outcome"],
    registry=registry,
)


# Series with known label values exist from the start, at 0, so that rates
# and alerts see the first increment instead of a series appearing; the
# submission outcomes are resolved once, as they are counted on every create.
CREATED = TRAININGS_SUBMITTED.labels("created")
DEDUPLICATED = TRAININGS_SUBMITTED.labels("deduplicated")
REJECTED = TRAININGS_SUBMITTED.labels("rejected")
for _method in ("WatchTraining", "WatchTrainings"):
    ACTIVE_WATCHES.labels(_method)
for _outcome in ("recorded", "event", "invalid", "limited", "refused", "finished"):
    PROGRESS_REPORTS.labels(_outcome)
