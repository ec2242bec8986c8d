"""Sends the short Redis commands of concurrent calls together, one pipeline
at a time.

Under load the store's cost is mostly redis-py's work per command (taking a
connection, the retry and timeout wrappers, one write and one wake-up per
reply), not Redis's. So while one pipeline is out, the commands issued
meanwhile wait and go together in the next: one write, one connection and
one wake-up for all of them. A lone command goes out two turns of the event
loop later, so an idle service loses nothing.

Only one pipeline is out at a time, so it has a connection of its own,
written to and read from directly: redis-py's Pipeline object costs, per
pipeline, more than the commands of a small one (a pool checkout with its
lock and health read, observability hooks, a reset under `shield`). Each
exchange has one deadline, the client's socket timeout, in place of
redis-py's timer per write (a task of its own) and per reply. A command is
packed when it is issued, so an argument Redis can not take fails that call
alone.

Only for commands that answer at once: a blocking read here would hold up
every other call.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from typing import Any, NamedTuple

import hiredis
import redis.asyncio as redis
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trainconductor_core.redis_spans import RedisSpans

MAX_BATCH = 256  # commands per pipeline: bounds one write and its replies


class _Command(NamedTuple):
    name: str  # what redis-py's reply callbacks go by: "HGETALL", "SCRIPT LOAD"
    packed: list[bytes]


_Waiting = tuple[_Command, "asyncio.Future[Any]"]


def _pack(*args: Any) -> list[bytes]:
    """Packs a command by hiredis (a dependency of this package), as
    redis-py's synchronous client does; its asyncio connection packs in
    Python, at a cost above the exchange's write. Unlike redis-py's
    `HiredisRespSerializer.pack`, no pass over every argument for buffers,
    which the store never sends: that pass was more than half the cost of
    packing a create's script call."""
    if " " in args[0]:  # "SCRIPT LOAD": each word is an argument
        args = (*args[0].split(), *args[1:])
    try:
        return [hiredis.pack_command(args)]
    except TypeError as err:  # what redis-py raises for a value it can not send
        raise DataError(str(err)) from err


def _quiet_context() -> contextvars.Context:
    """A context with OpenTelemetry's instrumentation suppressed. A pipeline
    carries the commands of many calls, so a span of its own would belong to
    no one call's trace."""

    def suppressed() -> contextvars.Context:
        with suppress_instrumentation():
            return contextvars.copy_context()

    # Run in an empty context, so that the copy holds the suppression only.
    return contextvars.Context().run(suppressed)


class AutoPipeline:
    def __init__(
        self, client: redis.Redis, tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self._client = client
        # Taken from the client's pool at the first batch and kept (its
        # address, Sentinel's master included, credentials, TLS, timeouts).
        self._connection: AbstractConnection | None = None
        # The deadline of an exchange: the connection's socket timeout,
        # which is set aside while the connection is here.
        self._timeout: float | None = None
        self._waiting: list[_Waiting] = []
        self._sending: asyncio.Task[None] | None = None
        self._scheduled = False
        self._quiet = _quiet_context()
        self._spans = RedisSpans(client, tracer_provider)

    async def execute(self, *args: Any) -> Any:
        """Runs one command and returns its reply, as `execute_command` would."""
        command = _Command(args[0], _pack(*args))
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((command, reply))
        self._schedule(loop)
        if not trace.get_current_span().is_recording():
            return await reply
        # A traced call's command has its span, as the Redis instrumentation
        # would give it (redis_spans.py), and still goes with the others:
        # sent alone through redis-py it cost that call more (docs/performance.md).
        span = self._spans.start(args)
        try:
            return await reply
        except Exception as error:
            self._spans.failed(span, error)
            raise
        finally:
            span.end()

    async def run_script(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.execute(*command)
        except NoScriptError:
            # Redis has lost its scripts (a restart, a failover), so this one
            # did not run. Every call in flight loads it again, in one pipeline.
            await self.execute("SCRIPT LOAD", script.script)
            return await self.execute(*command)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._waiting and self._sending is None and not self._scheduled:
            self._scheduled = True
            # Two turns of the event loop later, so that the commands issued
            # in this turn go too, and those of the calls this turn started
            # (a new call's handler first runs in the next). Under load that
            # makes pipelines longer and calls cheaper (docs/performance.md).
            loop.call_soon(loop.call_soon, self._send_waiting, loop)

    def _send_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        # A caller that gave up waiting (its deadline passed) was told its
        # call failed: its command is not sent.
        batch = [(command, reply) for command, reply in batch if not reply.done()]
        if not batch:
            self._schedule(loop)  # the commands past this batch, if any
            return
        self._sending = loop.create_task(self._send(batch), context=self._quiet.copy())
        self._sending.add_done_callback(lambda _: self._sent(loop))

    def _sent(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sending = None
        self._schedule(loop)

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.socket_timeout = self._timeout
            await self._client.connection_pool.release(connection)

    async def _send(self, batch: list[_Waiting]) -> None:
        commands = [command for command, _ in batch]
        try:
            connection = self._connection
            if connection is None:
                connection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
                self._timeout, connection.socket_timeout = connection.socket_timeout, None
                self._connection = connection
            # As a redis-py pipeline does: a broken connection is dropped and
            # the batch sent again on a new one, within the client's retries.
            replies = await connection.retry.call_with_retry(
                lambda: self._exchange(connection, commands),
                lambda _: connection.disconnect(),
            )
        except BaseException as err:
            # Cancelled or failed between a write and its replies: what is
            # left to read would be taken for the next batch's.
            if self._connection is not None:
                await asyncio.shield(self._connection.disconnect())
            if not isinstance(err, Exception):
                for _, reply in batch:
                    reply.cancel()
                raise
            for _, reply in batch:  # each caller gets it: none may wait for ever
                if not reply.done():
                    reply.set_exception(err)
            return
        for (_, reply), value in zip(batch, replies, strict=True):
            if reply.done():  # its caller gave up waiting meanwhile
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(value)

    async def _exchange(
        self, connection: AbstractConnection, commands: list[_Command]
    ) -> list[Any]:
        """Writes the commands at once, then reads their replies in order,
        each shaped by the client's callback for its command (HGETALL's
        dict, say). An error reply is that command's alone; the others stand.
        Past the deadline, redis-py drops the connection (the write or read
        is cancelled) and the exchange fails as a Redis timeout."""
        callbacks = self._client.response_callbacks
        replies: list[Any] = []
        try:
            async with asyncio.timeout(self._timeout):
                await connection.send_packed_command(
                    [chunk for command in commands for chunk in command.packed]
                )
                for command in commands:
                    try:
                        reply = await connection.read_response()
                    except ResponseError as err:
                        replies.append(err)
                        continue
                    callback = callbacks.get(command.name)
                    replies.append(reply if callback is None else callback(reply))
        except TimeoutError as err:  # the deadline's, not redis-py's own
            raise RedisTimeoutError(f"Redis did not answer within {self._timeout}s") from err
        return replies
