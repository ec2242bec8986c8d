"""Fixtures of the property tests: an API in a Redis database of its own,
a view of the keys it writes, a tally of what it answered; and the
Hypothesis settings they share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings

from devstack.redis_server import RedisServer
from tests.conftest import api_settings
from tests.property.values import ALLOWED_PATH_PREFIXES
from trainconductor_api.server import ApiServer, build_server

# The other suites write to database 0 and never clean up; in a database of
# their own, listing this test's keys stays cheap however many came before.
PROPERTY_DATABASE = 7


def examples(count: int) -> settings:
    """Settings of a property test that runs `count` examples."""
    return settings(
        max_examples=count,
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


def property_redis_url(redis_server: RedisServer) -> str:
    return f"redis://127.0.0.1:{redis_server.port}/{PROPERTY_DATABASE}"


@pytest.fixture
async def api(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[ApiServer]:
    """The API with the path prefixes the strategies know (overrides the shared one)."""
    settings = api_settings(
        redis_server,
        key_prefix,
        redis_url=property_redis_url(redis_server),
        allowed_path_prefixes=list(ALLOWED_PATH_PREFIXES),
    )
    server = build_server(settings, serve_metrics=False)
    await server.start()
    yield server
    await server.drain_and_stop()


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


@pytest.fixture
async def key_space(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[KeySpace]:
    client = aioredis.Redis.from_url(property_redis_url(redis_server))
    space = KeySpace(client, key_prefix)
    await space.clear()
    yield space
    await space.clear()
    await client.aclose()


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


@pytest.fixture
def tally() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    # A run that only ever saw one answer proved half of what it claims: the
    # strategies must keep producing both valid and invalid requests.
    if not tally.failed and tally.total >= 200:
        share = 0.1 * tally.total
        assert tally.accepted >= share, f"only {tally.accepted} of {tally.total} were accepted"
        assert tally.refused >= share, f"only {tally.refused} of {tally.total} were refused"
