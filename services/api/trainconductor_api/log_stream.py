"""One rank's log of a training, as StreamTrainingLogs sends it.

The log comes from the rank's pods while Kubernetes has them (each pod one
attempt, oldest first), else from the end of the log the controller kept
with the training when it finished. A followed log is read again from where
it got to whenever its read ends or goes quiet (a restarted API server, a
kubelet that does not end a follow, such as kwok): `SeenLines` drops what
was sent already. It moves on to the next attempt when a newer pod appears,
and ends once the training has finished and its last pod's lines are sent.

Memory is bounded whatever the client does: the reading side puts batches
(at most one read's worth of lines, each line cut at the limit) on a queue
of a few; when the client reads slowly, gRPC's flow control holds the
writing side, the queue fills, and the reading side stops reading from
Kubernetes until there is room.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from trainconductor_api.log_lines import Line, LineSplitter, LogTime, SeenLines
from trainconductor_api.pod_logs import KubernetesLogs, LogQuery, TrainingPod
from trainconductor_core.kept_logs import KeptLog
from trainconductor_core.store import TrainingStore


class Source(Enum):
    POD = "pod"
    KEPT = "kept"


@dataclass(frozen=True)
class LogRequest:
    training_id: str
    rank: int = 0
    # From 1; 0: the latest.
    attempt: int = 0
    tail_lines: int | None = None
    since_seconds: int | None = None
    follow: bool = False
    # Only lines written after this (a resumed follow's last line).
    after: LogTime | None = None


@dataclass(frozen=True)
class LogBatch:
    lines: Sequence[Line]
    rank: int
    attempt: int
    pod: str
    source: Source
    earlier_dropped: bool = False


class NoSuchAttempt(Exception):
    """The rank has fewer attempts than asked for."""

    def __init__(self, attempts: int, kept: bool = False) -> None:
        self.attempts = attempts
        self.kept = kept
        super().__init__(attempts)


@dataclass(frozen=True)
class StreamLimits:
    max_line_bytes: int
    lines_per_second: float
    # Batches read ahead of the client, at most.
    buffered_batches: int
    # How often a followed log is read again when quiet, and new attempts
    # looked for.
    poll_seconds: float
    # Lines in one batch of a kept log.
    batch_lines: int = 500


class _Finished(Exception):
    """The training finished while its log waited for a pod."""


Emit = Callable[[LogBatch], Awaitable[None]]
_END = object()


@dataclass
class _Pace:
    """A token bucket of lines: a stream sends at most `rate` lines a second
    on average, `rate` at once."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    at: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens, self.at = self.rate, self.clock()

    def wait_for(self, lines: int) -> float:
        """Seconds to wait before sending `lines`; takes them."""
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= lines
        return max(0.0, -self.tokens / self.rate)


class LogStreamer:
    def __init__(
        self,
        store: TrainingStore,
        kube: KubernetesLogs | None,
        limits: StreamLimits,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`kube`: None when the API reads no logs from Kubernetes; then only
        the kept ends of finished trainings are served."""
        self._store = store
        self._kube = kube
        self._limits = limits
        self._clock = clock

    async def stream(self, request: LogRequest) -> AsyncGenerator[LogBatch, None]:
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=self._limits.buffered_batches)
        reader = asyncio.create_task(self._read_into(request, queue))
        pace = _Pace(self._limits.lines_per_second)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, LogBatch)
                delay = pace.wait_for(len(item.lines))
                if delay:
                    await asyncio.sleep(delay)
                yield item
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read_into(self, request: LogRequest, queue: asyncio.Queue[object]) -> None:
        try:
            await self._read(request, queue.put)
        except asyncio.CancelledError:
            raise
        except _Finished:
            await queue.put(_END)
        except Exception as err:  # noqa: BLE001 - told to the client by the writing side
            await queue.put(err)
        else:
            await queue.put(_END)

    async def _read(self, request: LogRequest, emit: Emit) -> None:
        if self._kube is None:
            await self._kept(request, emit, SeenLines(request.after))
            return
        current: TrainingPod | None = None  # the pod read last
        seen = SeenLines(request.after)
        while True:
            pods = [p for p in await self._kube.pods(request.training_id) if p.rank == request.rank]
            if current is None:
                chosen = _pod_of_attempt(pods, request.attempt)
                if chosen is None:
                    if pods and not request.follow:
                        raise NoSuchAttempt(pods[-1].attempt)
                    if not pods and (not request.follow or await self._finished(request)):
                        # Its pods are gone (or it never had one): what was kept.
                        await self._kept(request, emit, seen)
                        return
                    await self._wait(request)
                    continue
                pod = chosen
            else:
                later = [p for p in pods if p.order() > current.order()]
                if not later:
                    if await self._finished(request):
                        # What its last pod wrote as it went, when the pod
                        # went before it was read: the kept end has it.
                        await self._kept(request, emit, seen, pod=current.name)
                        return
                    await asyncio.sleep(self._limits.poll_seconds)
                    continue
                pod = later[0]
            if not pod.started:
                if not request.follow:
                    return  # nothing written yet
                await self._wait(request)
                continue
            if current is not None:
                seen = SeenLines()
            await self._pod(pod, request, current is None, seen, emit)
            current = pod
            if not request.follow:
                return

    async def _wait(self, request: LogRequest) -> None:
        """Waits for a pod that is to come; ends the stream (cancelling it)
        when the training finished meanwhile."""
        if await self._finished(request):
            raise _Finished
        await asyncio.sleep(self._limits.poll_seconds)

    async def _finished(self, request: LogRequest) -> bool:
        return (await self._store.get(request.training_id)).phase.is_final

    async def _pod(
        self,
        pod: TrainingPod,
        request: LogRequest,
        first_read: bool,
        seen: SeenLines,
        emit: Emit,
    ) -> None:
        """Sends the pod's log; followed, until the pod is done and its log
        read to its end."""
        assert self._kube is not None
        follow = request.follow
        while True:
            if seen.last is not None:
                query = LogQuery(follow=follow, since_time=seen.last.rfc3339())
            elif first_read:
                query = LogQuery(
                    follow=follow,
                    tail_lines=request.tail_lines,
                    since_seconds=request.since_seconds,
                )
            else:
                query = LogQuery(follow=follow)
            read = await self._kube.open(pod.name, query)
            if read is None:
                return  # gone
            splitter = LineSplitter(self._limits.max_line_bytes)
            seen.rewind()
            ended = False
            try:
                while True:
                    chunk = await read.chunk()
                    if chunk == b"":
                        break  # quiet: is the pod done?
                    lines = splitter.feed(chunk) if chunk is not None else splitter.flush()
                    new = [line for line in lines if seen.is_new(line)]
                    if new:
                        await emit(LogBatch(new, pod.rank, pod.attempt, pod.name, Source.POD))
                    if chunk is None:
                        ended = True
                        break
            finally:
                await read.close()
            if not follow:
                return
            now = await self._kube.pod(pod.name)
            if now is None:
                return
            if ended and not now.done:
                # The follow ended with the pod running (the API server
                # closed it): read again, but not in a tight loop.
                await asyncio.sleep(self._limits.poll_seconds)
            if now.done:
                # One more read, not followed, to the end of what it wrote:
                # a kubelet ends a follow when the container ends, but one
                # that does not (kwok) would keep this read open for ever.
                follow = False

    async def _kept(
        self,
        request: LogRequest,
        emit: Emit,
        seen: SeenLines,
        pod: str | None = None,
    ) -> None:
        """The end of the rank's log kept with the finished training; with
        `pod`, only when it is that pod's (its lines after those `seen`)."""
        kept = (await self._store.kept_logs(request.training_id)).get(request.rank)
        if kept is None or (pod is not None and kept.pod != pod):
            return
        if pod is None and request.attempt and request.attempt != kept.attempt:
            raise NoSuchAttempt(kept.attempt, kept=True)
        lines = _kept_lines(kept, self._limits.max_line_bytes)
        seen.rewind()
        lines = [line for line in lines if seen.is_new(line)]
        dropped = kept.earlier_dropped
        if pod is None:  # the read's own start (a follow's was its pod's)
            if request.since_seconds is not None:
                since = LogTime(int(self._clock()) - request.since_seconds, 0)
                lines = [line for line in lines if line.time is None or line.time >= since]
            if request.tail_lines is not None and len(lines) > request.tail_lines:
                lines = lines[len(lines) - request.tail_lines :]
        for start in range(0, len(lines), self._limits.batch_lines):
            batch = lines[start : start + self._limits.batch_lines]
            await emit(
                LogBatch(
                    batch,
                    request.rank,
                    kept.attempt,
                    kept.pod,
                    Source.KEPT,
                    earlier_dropped=dropped and start == 0,
                )
            )


def _pod_of_attempt(pods: list[TrainingPod], attempt: int) -> TrainingPod | None:
    """The rank's latest pod of the attempt (0: of the latest attempt)."""
    if attempt:
        pods = [p for p in pods if p.attempt == attempt]
    return pods[-1] if pods else None


def _kept_lines(kept: KeptLog, max_line_bytes: int) -> list[Line]:
    splitter = LineSplitter(max_line_bytes)
    return splitter.feed(kept.log.encode()) + splitter.flush()
