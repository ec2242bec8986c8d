"""The `trainconductor_build_info` gauge both services export."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge

from trainconductor_core import __version__


def register_build_info(registry: CollectorRegistry, service: str) -> None:
    gauge = Gauge(
        "trainconductor_build_info",
        "Always 1; the labels say what runs.",
        ["service", "version", "python_version"],
        registry=registry,
    )
    gauge.labels(service, __version__, platform.python_version()).set(1)
