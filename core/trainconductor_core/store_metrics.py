"""Metrics of the store's Redis operations, for both services."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REDIS_OPERATION_SECONDS = Histogram(
    "trainconductor_redis_operation_duration_seconds",
    "Latency of the store's operations on Redis (each one or a few commands).",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REDIS_ERRORS = Counter(
    "trainconductor_redis_errors_total",
    "Store operations that failed because Redis was unreachable or too slow.",
    ["operation"],
)
REDIS_FULL = Gauge(
    "trainconductor_redis_full",
    "1 while Redis is out of memory (its maxmemory reached): new trainings are refused "
    "(RESOURCE_EXHAUSTED); reads, cancels and status writes go on.",
)
