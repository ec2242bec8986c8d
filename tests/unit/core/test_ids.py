"""Training ids rise within a process, whatever the clock does."""

from __future__ import annotations

from trainconductor_core.ids import TrainingIds, created_ms, is_training_id


def test_ids_made_in_one_millisecond_rise_in_the_order_they_were_made() -> None:
    ids = TrainingIds()
    made = [ids.new(1_700_000_000_000) for _ in range(10_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(is_training_id(i) for i in made)


def test_ids_rise_when_the_clock_steps_back() -> None:
    ids = TrainingIds()
    first = ids.new(1_700_000_000_500)
    second = ids.new(1_700_000_000_000)
    assert second > first
    assert created_ms(second) == created_ms(first)


def test_a_new_millisecond_starts_a_new_time_prefix() -> None:
    ids = TrainingIds()
    first = ids.new(1_700_000_000_000)
    later = ids.new(1_700_000_000_001)
    assert later > first
    assert created_ms(later) == 1_700_000_000_001


def test_a_full_millisecond_borrows_the_next_one_and_still_rises() -> None:
    ids = TrainingIds()
    made = [ids.new(1_700_000_000_000) for _ in range(200_000)]
    assert made == sorted(made)
    assert created_ms(made[-1]) > 1_700_000_000_000
