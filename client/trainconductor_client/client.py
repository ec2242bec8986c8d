"""The Python client of Train Conductor's v1 API.

Every call has a deadline. Idempotent calls are retried with backoff while
the API answers UNAVAILABLE; CreateTraining is made idempotent by always
sending a request_id, so its retries never make a second training. Watches
resume from the last event seen, so a reconnect loses and repeats nothing.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from trainconductor_client.errors import (
    HistoryTrimmed,
    TrainConductorError,
    Unavailable,
    from_rpc_error,
)

T = TypeVar("T")

FINAL_PHASES = frozenset({pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED})
SERVICE_NAME = "trainconductor.v1.TrainingService"
# A watch stream open this long was working when it ended.
STEADY_STREAM_SECONDS = 5.0
# WatchTrainings' initial metadata: the event its stream starts after.
RESUME_POINT_KEY = "x-tc-after-event-id"


class _Token:
    """The bearer token to send: one given, or the content of a file read
    again when it changes (a projected ServiceAccount token, which the
    kubelet renews before it expires)."""

    def __init__(self, token: str | None, path: str | Path | None) -> None:
        self._token = token or ""
        self._path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return bool(self._token or self._path)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self._path is not None:
            st = self._path.stat()
            if (st.st_mtime_ns, st.st_ino) != self._stamp:
                self._token = self._path.read_text().strip()
                self._stamp = (st.st_mtime_ns, st.st_ino)
        return (("authorization", f"Bearer {self._token}"),) if self._token else ()


class _Auth(grpc.AuthMetadataPlugin):
    def __init__(self, token: _Token) -> None:
        self._token = token

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        try:
            metadata = self._token.metadata()
        except OSError as err:
            callback((), err)
            return
        callback(metadata, None)


def _read(path: str | Path | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


class Client:
    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        tls: bool = False,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        token: str | None = None,
        token_file: str | Path | None = None,
        user: str | None = None,
        timeout: float = 10.0,
        retries: int = 4,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self._user: tuple[tuple[str, str], ...] = (("x-tc-user", user),) if user else ()
        # Over TLS the token goes with gRPC's call credentials; over plain
        # text (only sensible on loopback) gRPC refuses those, so it goes as
        # plain metadata.
        self._plain_token = _Token(None, None)
        options = [("grpc.keepalive_time_ms", 30_000)]
        bearer = _Token(token, token_file)
        if tls or ca_file or cert_file:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file),
                private_key=_read(key_file),
                certificate_chain=_read(cert_file),
            )
            if bearer:
                credentials = grpc.composite_channel_credentials(
                    credentials, grpc.metadata_call_credentials(_Auth(bearer))
                )
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._plain_token = bearer
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.TrainingServiceStub(self._channel)
        # The typed stubs of grpc_health list no methods; the stub has Check.
        self._health: Any = health_pb2_grpc.HealthStub(self._channel)

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return self._user + self._plain_token.metadata()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, call: Callable[[], T]) -> T:
        """Runs `call`, retrying with jittered backoff while UNAVAILABLE."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except grpc.RpcError as err:
                error = from_rpc_error(err)
                if not isinstance(error, Unavailable) or attempt == self.retries:
                    raise error from None
            time.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    # the v1 calls

    def create(self, spec: pb.TrainingSpec, *, request_id: str | None = None) -> pb.Training:
        request = pb.CreateTrainingRequest(spec=spec, request_id=request_id or str(uuid.uuid4()))
        return self._call(
            lambda: (
                self._stub.CreateTraining(
                    request, timeout=self.timeout, metadata=self._metadata
                ).training
            )
        )

    def get(self, training_id: str) -> pb.Training:
        request = pb.GetTrainingRequest(id=training_id)
        return self._call(
            lambda: (
                self._stub.GetTraining(
                    request, timeout=self.timeout, metadata=self._metadata
                ).training
            )
        )

    def list_page(
        self,
        *,
        phase: int = pb.PHASE_UNSPECIFIED,
        owner: str = "",
        labels: Mapping[str, str] | None = None,
        page_size: int = 50,
        page_token: str = "",
        queue: str = "",
    ) -> tuple[list[pb.Training], str]:
        request = pb.ListTrainingsRequest(
            phase=phase,  # type: ignore[arg-type]
            owner=owner,
            labels=dict(labels or {}),
            page_size=page_size,
            page_token=page_token,
            queue=queue,
        )
        response = self._call(
            lambda: self._stub.ListTrainings(request, timeout=self.timeout, metadata=self._metadata)
        )
        return list(response.trainings), response.next_page_token

    def list(
        self,
        *,
        phase: int = pb.PHASE_UNSPECIFIED,
        owner: str = "",
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        queue: str = "",
    ) -> Iterator[pb.Training]:
        """Every matching training (of `queue` only, when given), newest
        first, fetched page by page."""
        token = ""
        seen = 0
        while True:
            page, token = self.list_page(
                phase=phase,
                owner=owner,
                labels=labels,
                page_size=min(limit or 200, 200),
                page_token=token,
                queue=queue,
            )
            for training in page:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield training
            if not token:
                return

    def cancel(self, training_id: str) -> pb.Training:
        request = pb.CancelTrainingRequest(id=training_id)
        return self._call(
            lambda: (
                self._stub.CancelTraining(
                    request, timeout=self.timeout, metadata=self._metadata
                ).training
            )
        )

    def hold(self, training_id: str) -> pb.Training:
        """Takes a queued training out of its queue until `release`;
        idempotent. FailedPrecondition for a training in no queue."""
        request = pb.HoldTrainingRequest(id=training_id)
        return self._call(
            lambda: (
                self._stub.HoldTraining(
                    request, timeout=self.timeout, metadata=self._metadata
                ).training
            )
        )

    def release(self, training_id: str) -> pb.Training:
        """Puts a held training back in its queue; idempotent."""
        request = pb.ReleaseTrainingRequest(id=training_id)
        return self._call(
            lambda: (
                self._stub.ReleaseTraining(
                    request, timeout=self.timeout, metadata=self._metadata
                ).training
            )
        )

    def watch(
        self, training_id: str, *, after_event_id: str = "", timeout: float | None = None
    ) -> Iterator[pb.TrainingEvent]:
        """The training's events until its final phase, reconnecting (from the
        last event seen) when the connection drops; `TimeoutError` once
        `timeout` seconds have passed, events or not."""

        def open_stream(after: str, remaining: float | None) -> Any:
            return self._stub.WatchTraining(
                pb.WatchTrainingRequest(id=training_id, after_event_id=after),
                metadata=self._metadata,
                timeout=remaining,
            )

        return self._follow(
            open_stream, after_event_id, timeout, f"training {training_id} did not finish within"
        )

    def watch_all(
        self, *, owner: str = "", after_event_id: str = "", timeout: float | None = None
    ) -> Iterator[pb.TrainingEvent]:
        """The events of every training the caller may see (of `owner`'s only,
        when given), from now or after `after_event_id`, reconnecting as
        `watch` does; `TimeoutError` once `timeout` seconds have passed. It
        asks for bookmarks, so that it resumes past the events it skipped."""

        def open_stream(after: str, remaining: float | None) -> Any:
            return self._stub.WatchTrainings(
                pb.WatchTrainingsRequest(owner=owner, after_event_id=after, bookmarks=True),
                metadata=self._metadata,
                timeout=remaining,
            )

        return self._follow(open_stream, after_event_id, timeout, "watched all trainings for")

    def _follow(
        self,
        open_stream: Callable[[str, float | None], Any],
        after_event_id: str,
        timeout: float | None,
        late: str,
    ) -> Iterator[pb.TrainingEvent]:
        """The events of the streams `open_stream(after, remaining_seconds)`
        opens, each resuming where the one before broke; `late` begins the
        message of the `TimeoutError`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = after_event_id
        failures = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{late} {timeout:g}s")
            opened = time.monotonic()
            stream = open_stream(last, remaining)
            try:
                for response in stream:
                    failures = 0
                    if not response.HasField("event"):
                        # A bookmark: events this watch does not show went by.
                        # (WatchTraining's responses have no such field.)
                        last = getattr(response, "bookmark_event_id", "") or last
                        continue
                    last = response.event.event_id
                    yield response.event
                return
            except grpc.RpcError as err:
                # A stream that began "from now" and saw nothing resumes
                # where it began: what happened since is not lost.
                last = last or _resume_point(stream)
                if deadline is not None and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue  # the loop's first check says so
                error = from_rpc_error(err)
                if time.monotonic() - opened > STEADY_STREAM_SECONDS:
                    # It had been working: the server's connection age (the
                    # API closes connections every few minutes to rebalance)
                    # or a proxy's idle limit ended it, not a failure in a row.
                    failures = 0
                if not isinstance(error, Unavailable) or failures >= self.retries:
                    raise error from None
                failures += 1
                time.sleep(min(0.2 * 2**failures, 5.0))
            finally:
                stream.cancel()

    def logs(
        self,
        training_id: str,
        *,
        rank: int = 0,
        attempt: int = 0,
        tail: int = 0,
        since: float | None = None,
        follow: bool = False,
        timeout: float | None = None,
    ) -> Iterator[pb.StreamTrainingLogsResponse]:
        """The log of one rank of the training (0 for a training of one pod),
        in batches of lines: each says the attempt and pod they come from,
        and whether they come from the pod or from the end of the log kept
        when the training finished (its pods gone).

        `attempt`: from 1; 0 is the latest. `tail`: only the last lines (0:
        all); `since`: only lines of the last so many seconds. `follow`: lines
        as they are written, across new attempts, until the training ends; a
        broken stream resumes after the last line it got. `TimeoutError` once
        `timeout` seconds have passed."""
        request = pb.StreamTrainingLogsRequest(
            id=training_id, rank=rank, attempt=attempt, tail_lines=tail, follow=follow
        )
        if since is not None:
            request.since.FromNanoseconds(int(since * 1e9))
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"the log of training {training_id} went on past {timeout:g}s")
            stream = self._stub.StreamTrainingLogs(
                request, metadata=self._metadata, timeout=remaining
            )
            try:
                for response in stream:
                    failures = 0
                    yield response
                    if response.lines and response.lines[-1].HasField("time"):
                        # Where a broken follow resumes: after this line, in
                        # its attempt (and those after it).
                        request.after_time.CopyFrom(response.lines[-1].time)
                        request.attempt = response.attempt
                        request.tail_lines = 0
                        request.ClearField("since")
                return
            except grpc.RpcError as err:
                if deadline is not None and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue  # the loop's first check says so
                error = from_rpc_error(err)
                if not follow or not isinstance(error, Unavailable) or failures >= self.retries:
                    raise error from None
                failures += 1
                time.sleep(min(0.2 * 2**failures, 5.0))
            finally:
                stream.cancel()

    def wait(self, training_id: str, timeout: float | None = None) -> pb.Training:
        """Follows the training to its final phase and returns it;
        `TimeoutError` when it has not finished within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        remaining = timeout
        while True:
            try:
                for event in self.watch(training_id, timeout=remaining):
                    if event.phase in FINAL_PHASES:
                        break
                return self.get(training_id)
            except HistoryTrimmed:
                # The watch fell behind what its training keeps (a finished
                # one keeps its last few events): the record says how it
                # stands, and a watch from the oldest kept event goes on.
                training = self.get(training_id)
                if training.phase in FINAL_PHASES:
                    return training
                if deadline is not None:
                    remaining = max(deadline - time.monotonic(), 0.001)

    def health(self, services: Sequence[str] = ("", SERVICE_NAME)) -> dict[str, str]:
        result = {}
        for service in services:
            request = health_pb2.HealthCheckRequest(service=service)
            try:
                response = self._health.Check(request, timeout=self.timeout)
                result[service or "(server)"] = health_pb2.HealthCheckResponse.ServingStatus.Name(
                    response.status
                )
            except grpc.RpcError as err:
                raise from_rpc_error(err) from None
        return result


def _resume_point(stream: Any) -> str:
    """The event a stream started after, when its server said (WatchTrainings
    does, in its initial metadata); read once the stream has ended, so it
    never waits."""
    for key, value in stream.initial_metadata() or ():
        if key == RESUME_POINT_KEY:
            return str(value)
    return ""


__all__ = ["FINAL_PHASES", "Client", "TrainConductorError"]
