"""Opens the Redis connection described by the settings.

Bounded timeouts on every call and retries with jittered exponential backoff
on connection errors, so a blip in the network costs latency, not a failure,
and an outage turns into `StoreUnavailable` within a few seconds.
"""

from __future__ import annotations

import ssl

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trainconductor_core.settings import CommonSettings


def connect(settings: CommonSettings) -> redis.Redis:
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), settings.redis_retries)
    options: dict[str, object] = {
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 10,
        "max_connections": settings.redis_max_connections,
        "decode_responses": True,
    }
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password:
        options["password"] = settings.redis_password.get_secret_value()
    if settings.redis_ca_file:
        options["ssl_ca_certs"] = str(settings.redis_ca_file)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    if settings.redis_sentinels:
        sentinels = []
        for address in settings.redis_sentinels:
            host, _, port = address.rpartition(":")
            sentinels.append((host, int(port)))
        if settings.redis_ca_file:
            options["ssl"] = True  # TLS to the Sentinels and to the master alike
        # redis-py asks the Sentinels with the socket settings only: TLS too,
        # and their own password, if any.
        asking = {k: v for k, v in options.items() if k.startswith(("socket_", "ssl"))}
        if settings.redis_sentinel_password:
            asking["password"] = settings.redis_sentinel_password.get_secret_value()
        sentinel = Sentinel(sentinels, sentinel_kwargs=asking, **options)  # type: ignore[no-untyped-call]
        master: redis.Redis = sentinel.master_for(settings.redis_sentinel_master)
        return master
    return redis.Redis.from_url(settings.redis_url, **options)  # type: ignore[arg-type]
