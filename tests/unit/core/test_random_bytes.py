from __future__ import annotations

import os

import pytest

from trainconductor_core.random_bytes import RandomBytes


def test_draws_are_of_the_size_asked_and_do_not_repeat() -> None:
    random = RandomBytes()
    draws = [random.hex(16) for _ in range(1000)]  # past one read of the kernel's

    assert all(len(draw) == 32 and int(draw, 16) >= 0 for draw in draws)
    assert len(set(draws)) == len(draws)


def test_an_integer_below_a_power_of_two_covers_its_range() -> None:
    random = RandomBytes()
    seen = {random.below(8) for _ in range(2000)}

    assert seen == set(range(8))
    assert all(0 <= random.below(1 << 31) < 1 << 31 for _ in range(1000))


@pytest.mark.parametrize("limit", [0, 3, 1000, (1 << 32) + 1, 1 << 33])
def test_a_limit_it_can_not_draw_uniformly_below_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        RandomBytes().below(limit)


def test_a_forked_child_does_not_draw_what_its_parent_draws() -> None:
    random = RandomBytes()
    random.take(1)  # the parent holds bytes it has not handed out yet
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, random.take(16))
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 16)
    os.close(read)
    os.close(write)

    assert from_child != random.take(16)
