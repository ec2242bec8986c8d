"""Fixtures of the property tests: an API in a Redis database of its own,
a view of the keys it writes, a tally of what it answered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from devstack.redis_server import RedisServer
from tests.property.examples import KeySpace, Tally
from tests.property.values import ALLOWED_PATH_PREFIXES
from tests.support.api import api_settings
from trainconductor_api.server import ApiServer, build_server

# The other suites write to database 0 and never clean up; in a database of
# their own, listing this test's keys stays cheap however many came before.
PROPERTY_DATABASE = 7


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


@pytest.fixture
async def key_space(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[KeySpace]:
    client = aioredis.Redis.from_url(property_redis_url(redis_server))
    space = KeySpace(client, key_prefix)
    await space.clear()
    yield space
    await space.clear()
    await client.aclose()


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
