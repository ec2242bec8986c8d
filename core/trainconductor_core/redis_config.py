"""What Train Conductor asks of its Redis's configuration.

The chart's bundled Redis is configured so (templates/redis); an operator's
own Redis should be too (the chart's README says how). The tests and the
benches start their Redis with the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping

REDIS_CONFIG: Mapping[str, str] = {
    # Never evict: a lost key is a lost training. A full Redis refuses new
    # trainings instead (RESOURCE_EXHAUSTED) and serves everything else.
    "maxmemory-policy": "noeviction",
    # A training's hash keeps values this long (its spec, its conditions) in
    # Redis's compact listpack encoding instead of a hash table: about half
    # the memory of a training (docs/performance.md).
    "hash-max-listpack-value": "2048",
}


def server_args(config: Mapping[str, str] = REDIS_CONFIG) -> tuple[str, ...]:
    """`config` as `redis-server` command-line options."""
    return tuple(part for name, value in config.items() for part in (f"--{name}", value))
