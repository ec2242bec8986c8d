"""Token buckets per identity, on a clock the test moves."""

from __future__ import annotations

import pytest

from trainconductor_api.token_bucket import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate_with_the_wait_named() -> None:
    clock = Clock()
    buckets = TokenBuckets(2.0, 3, clock=clock)
    assert [buckets.take("alice") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("alice") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("alice") == 0
    assert buckets.take("alice") == pytest.approx(0.5)


def test_identities_have_buckets_of_their_own() -> None:
    buckets = TokenBuckets(1.0, 1, clock=Clock())
    assert buckets.take("alice") == 0
    assert buckets.take("alice") > 0
    assert buckets.take("bob") == 0


def test_a_bucket_left_alone_fills_up_to_the_burst_only() -> None:
    clock = Clock()
    buckets = TokenBuckets(10.0, 2, clock=clock)
    buckets.take("alice")
    clock.now += 3600
    assert [buckets.take("alice") > 0 for _ in range(3)] == [False, False, True]


def test_refused_calls_do_not_earn_credit() -> None:
    clock = Clock()
    buckets = TokenBuckets(1.0, 1, clock=clock)
    buckets.take("alice")
    for _ in range(10):
        assert buckets.take("alice") > 0
    clock.now += 1.0
    assert buckets.take("alice") == 0


def test_memory_is_bounded_by_forgetting_the_longest_unused() -> None:
    buckets = TokenBuckets(1.0, 1, clock=Clock(), max_keys=2)
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")  # "a" is forgotten: a new bucket is full
    assert buckets.take("a") == 0
    assert buckets.take("c") > 0
