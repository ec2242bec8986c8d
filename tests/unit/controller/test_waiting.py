"""Waiting: the gauges of trainings waiting in each queue, by reason, and of
the oldest wait per queue, as an operator reads them on the dashboard."""

from __future__ import annotations

from prometheus_client import REGISTRY

from trainconductor_controller.waiting import Wait, Waiting

SECOND = 1000


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_counts_are_by_queue_and_reason_and_a_training_counts_once() -> None:
    waiting = Waiting(clock=lambda: 100.0)
    waiting.note("a", Wait("team-a", "WaitingForQuota", 10 * SECOND))
    waiting.note("b", Wait("team-a", "WaitingForQuota", 20 * SECOND))
    waiting.note("c", Wait("team-a", "QueueUnavailable", 30 * SECOND))
    waiting.note("d", Wait("team-b", "WaitingForQuota", 40 * SECOND))
    # Seen again with another reason: it moves, it is not counted twice.
    waiting.note("c", Wait("team-a", "WaitingForQuota", 30 * SECOND))
    assert waiting.counts() == {("team-a", "WaitingForQuota"): 3, ("team-b", "WaitingForQuota"): 1}


def test_the_oldest_wait_is_the_earliest_submission_still_waiting_in_each_queue() -> None:
    now = [100.0]
    waiting = Waiting(clock=lambda: now[0])
    waiting.note("late", Wait("team-a", "WaitingForQuota", 90 * SECOND))
    waiting.note("early", Wait("team-a", "WaitingForQuota", 40 * SECOND))
    waiting.note("other", Wait("team-b", "RequeueBackoff", 95 * SECOND))
    assert waiting.oldest_seconds() == {"team-a": 60.0, "team-b": 5.0}
    # The earliest one is admitted: the next in age is the oldest.
    waiting.note("early", None)
    now[0] = 110.0
    assert waiting.oldest_seconds() == {"team-a": 20.0, "team-b": 15.0}


def test_a_submission_stamped_after_the_clock_reads_no_negative_wait() -> None:
    # Another machine's clock stamped it (the API's), a little ahead.
    waiting = Waiting(clock=lambda: 100.0)
    waiting.note("a", Wait("team-a", "WaitingForQuota", 100_500))
    assert waiting.oldest_seconds() == {"team-a": 0.0}


def test_export_sets_the_gauges_and_a_queue_left_empty_goes_to_zero() -> None:
    queue = "unit-export"  # a queue of this test's own in the process-wide registry
    waiting = Waiting(clock=lambda: 100.0)
    waiting.note("a", Wait(queue, "WaitingForQuota", 40 * SECOND))
    waiting.note("b", Wait(queue, "QueueUnavailable", 70 * SECOND))
    waiting.export()
    series = "trainconductor_queue_waiting_trainings"
    oldest = "trainconductor_queue_oldest_waiting_seconds"
    assert gauge(series, queue=queue, reason="WaitingForQuota") == 1
    assert gauge(series, queue=queue, reason="QueueUnavailable") == 1
    assert gauge(oldest, queue=queue) == 60
    waiting.note("a", None)
    waiting.export()
    assert gauge(series, queue=queue, reason="WaitingForQuota") == 0
    assert gauge(oldest, queue=queue) == 30
    waiting.note("b", None)
    waiting.export()
    # Not dropped (a dashboard's line would break off): zero.
    assert gauge(series, queue=queue, reason="QueueUnavailable") == 0
    assert gauge(oldest, queue=queue) == 0
