"""/readyz: what keeps the controller from being ready, as an operator reads it."""

from __future__ import annotations

from trainconductor_controller.health_server import Readiness


def test_a_leader_whose_watch_fails_is_not_ready_and_says_which() -> None:
    readiness = Readiness(redis=True, kubernetes=True, leading=True, synced=True)
    assert readiness.problems() == []
    readiness.failing_watches = lambda: ["events"]
    assert readiness.problems() == ["watch of events failing"]


def test_a_follower_is_ready_without_caches() -> None:
    follower = Readiness(redis=True, kubernetes=True, failing_watches=lambda: ["jobs"])
    assert follower.problems() == []
    assert Readiness(redis=True, kubernetes=True, leading=True).problems() == ["caches not synced"]
