"""What a service keeps from its start is left out of later collections;
what it threw away is collected, not kept for ever."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from trainconductor_core.startup_objects import freeze_startup_objects


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen_afterwards")
def test_live_objects_are_frozen_and_garbage_is_collected_first() -> None:
    kept = Node()
    garbage = Node()
    garbage.other = Node()
    garbage.other.other = garbage  # a cycle: only a collection frees it
    gone = weakref.ref(garbage)
    del garbage

    frozen = freeze_startup_objects()

    assert gone() is None, "a cycle left by starting was frozen instead of collected"
    assert frozen == gc.get_freeze_count() > 0
    # A full collection no longer walks what was alive at the freeze.
    assert not any(obj is kept for obj in gc.get_objects(generation=2))
