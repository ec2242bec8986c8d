"""What a create records besides the spec, alike for the v1 and legacy services."""

from __future__ import annotations

from opentelemetry import propagate, trace

from trainconductor_core.random_bytes import RANDOM


def server_request_id() -> str:
    """A request id for a create whose client sent none, so that the store's
    own retries after a lost reply cannot record the training twice."""
    return f"server-{RANDOM.hex(16)}"


def call_trace_context() -> dict[str, str]:
    """This call's trace context, which the controller continues; empty when
    tracing is off (there is no span to carry then)."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(carrier)
    return carrier
