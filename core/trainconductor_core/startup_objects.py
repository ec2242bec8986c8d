"""The objects a service makes while starting (modules, protobuf
descriptors, gRPC servers, settings) live as long as its process, yet each
full collection walks them all: under load, a pause of the event loop every
few seconds, long enough to show in the p99 (docs/performance.md). Frozen,
they are left out of every collection."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collects the garbage starting left, then freezes what is alive;
    returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
