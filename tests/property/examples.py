"""How a property test runs its examples: the Hypothesis settings they
share, the Redis keys one test writes, and the tally of what the API
answered."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings


def examples(count: int) -> settings:
    """Settings of a property test that runs `count` examples: the same
    ones on every run, so that a run passes or fails for the code alone;
    `make test-explore` draws new ones (TC_EXPLORE=1)."""
    return settings(
        max_examples=count,
        derandomize=os.environ.get("TC_EXPLORE") != "1",
        deadline=None,  # a call over the loopback may stall on a busy machine
        database=None,  # no example database written into the checkout
        print_blob=True,
        suppress_health_check=[
            # One API and key space serve all the examples of a test; each
            # example leaves the key space empty.
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


@dataclass(frozen=True)
class KeySpace:
    """The Redis keys under one test's prefix."""

    client: aioredis.Redis
    prefix: str

    async def keys(self) -> list[str]:
        found: list[bytes | str] = await self.client.keys(self.prefix + "*")
        return sorted(k.decode(errors="replace") if isinstance(k, bytes) else k for k in found)

    async def clear(self) -> None:
        if keys := await self.keys():
            await self.client.delete(*keys)


@dataclass
class Tally:
    """How the examples of one test were answered."""

    accepted: int = 0
    refused: int = 0
    failed: bool = False

    @contextmanager
    def example(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.failed = True
            raise

    def count(self, accepted: bool) -> None:
        if accepted:
            self.accepted += 1
        else:
            self.refused += 1

    @property
    def total(self) -> int:
        return self.accepted + self.refused
