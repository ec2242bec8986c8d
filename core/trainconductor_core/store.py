"""The Redis store: Train Conductor's system of record.

Layout (every key under the configured prefix, "tc:" by default):

  training:{id}          hash: the spec (protobuf, base64), owner, queue and
                         priority, desired state (generation, cancel_requested,
                         held) and observed status (with queue_position)
  request:{owner}/{rid}  the id a request id created (idempotent create); a
                         request id has no "/", so no two owners share a key
  idx:all                sorted set of every id; members sort by creation
  idx:phase:{PHASE}      ... of the ids in a phase
  idx:owner:{owner}      ... of an owner's ids
  idx:label:{k}={v}      ... of the ids carrying a label
  changes                stream: "the desired state of this id changed",
                         read by the controller through a consumer group
  events:{id}            stream (capped): status events of one training; a
                         finished training keeps only its last few
  events                 stream (capped): status events of all trainings
  removed:{id}           tombstone (expires): the owner of a training removed
                         after the retention period, so reading it says so
  progress:reported      sorted set (score: when, ms) of the trainings whose
                         trainer reported progress and that are not stalled
  progress:stalled       sorted set (score: since when) of stalled trainings

Ids are time-ordered (see `ids.py`) and all index scores are 0, so each
index is ordered by id and pages walk it by id: new trainings land before
the cursor, never inside a later page. Each write is one Lua script, so a
training, its indexes and its feed entries change together or not at all.

Retention removes a finished training with its hash, its events and its
index entries in one script too. Its request-id key stays until it expires
(`request_id_ttl_seconds` after the create): a late retry is told that its
training was removed, instead of making a second one.

Redis must evict nothing (maxmemory-policy noeviction; see redis_config.py).
When it is full, the scripts that record new trainings are refused whole
(`StoreFull`); those that record what happened to existing ones (status,
cancel, removal) run on (their Lua flag allow-oom): they are small, bounded
by the trainings that exist, and removal frees memory.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Any, ParamSpec, TypeVar, cast

import orjson
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from trainconductor.v1 import progress_pb2
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_core.auto_pipeline import AutoPipeline
from trainconductor_core.errors import (
    ActiveTrainingsCapReached,
    HistoryTrimmed,
    InvalidCursor,
    RequestIdOfRemovedTraining,
    StoreFull,
    StoreUnavailable,
    TrainingFinished,
    TrainingNotFound,
    TrainingRemoved,
)
from trainconductor_core.ids import TrainingIds
from trainconductor_core.kept_logs import KeptLog
from trainconductor_core.phases import ACTIVE_PHASES, FINAL_PHASES, Phase
from trainconductor_core.record import (
    Change,
    StatusUpdate,
    TrainingEvent,
    TrainingRecord,
    encode_progress,
)
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store_metrics import REDIS_ERRORS, REDIS_FULL, REDIS_OPERATION_SECONDS

P = ParamSpec("P")
T = TypeVar("T")

_SUBMITTED_REASON = "Submitted"
_SUBMITTED_MESSAGE = "Recorded; waiting for the controller to create its Job."
_CANCEL_REASON = "CancelRequested"
_CANCEL_MESSAGE = "Cancellation requested; waiting for the controller to stop the Job."
_HOLD_REASON = "HoldRequested"
_HOLD_MESSAGE = "Hold requested; waiting for the controller to take it out of its queue."
_RELEASE_REASON = "ReleaseRequested"
_RELEASE_MESSAGE = "Release requested; waiting for the controller to put it back in its queue."
_MAX_SCAN_PER_PAGE = 20_000  # bounds the work of one filtered list call

# What the stream reads return with decode_responses=True (RESP2): one
# [stream, entries] pair per stream, each entry an [id, fields] pair.
_StreamEntries = list[tuple[str, dict[str, str]]]
_Streams = list[tuple[str, _StreamEntries]]


def _unavailable_on_outage(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Times the operation, turns Redis being unreachable into
    `StoreUnavailable` and Redis being out of memory into `StoreFull` (both
    retryable)."""
    operation = method.__name__.lstrip("_")
    seconds = REDIS_OPERATION_SECONDS.labels(operation)
    errors = REDIS_ERRORS.labels(operation)

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, ReadOnlyError) as err:
            errors.inc()
            raise StoreUnavailable(f"Redis is unavailable: {type(err).__name__}") from err
        except OutOfMemoryError as err:
            REDIS_FULL.set(1)
            raise StoreFull(
                "Redis is out of memory (OOM: its maxmemory is reached) and refuses new "
                "trainings until memory is freed or maxmemory raised"
            ) from err
        finally:
            seconds.observe(time.perf_counter() - start)

    return wrapper


def _event_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("<ms>-<seq>", or "<ms>") in the order Redis keeps."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class WriteResult(Enum):
    NOT_FOUND = -1
    STALE = 0
    UNCHANGED = 1
    CHANGED = 2


@dataclass(frozen=True)
class ProgressRecorded:
    """What became of a progress report."""

    # The ETA the store computed from the step rate, ms; None: not known.
    eta_ms: int | None
    # Whether it made an event (the first after the throttle period, or one
    # that ended a stall).
    event: bool


class Removal(Enum):
    """What the retention script did with one training."""

    GONE = -1  # no such training (its stale index entries were removed)
    KEPT = 0  # unfinished, or finished after the cutoff
    REMOVED = 1


@dataclass(frozen=True)
class ListFilter:
    phase: Phase | None = None
    owner: str = ""
    labels: Mapping[str, str] | None = None
    queue: str = ""

    def matches(self, record: TrainingRecord) -> bool:
        if self.phase is not None and record.phase != self.phase:
            return False
        if self.owner and record.owner != self.owner:
            return False
        if self.queue and record.queue != self.queue:
            return False
        return all(record.spec.labels.get(k) == v for k, v in (self.labels or {}).items())

    def digest(self) -> str:
        filters: list[object] = [self.phase, self.owner, sorted((self.labels or {}).items())]
        if self.queue:  # tokens of lists without a queue stay as they were
            filters.append(self.queue)
        canonical = json.dumps(filters, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class TrainingStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "tc:",
        request_id_ttl_seconds: int = 7 * 24 * 3600,
        change_feed_cap: int = 100_000,
        training_events_cap: int = 1_000,
        all_events_cap: int = 100_000,
        finished_events_kept: int = 10,
        max_active_per_owner: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`finished_events_kept`: the events a training's stream keeps once
        it finished (its last ones; at least its final one)."""
        if finished_events_kept < 1:
            raise ValueError("a finished training keeps at least its final event")
        self._redis = client
        self._prefix = prefix
        self._request_id_ttl = request_id_ttl_seconds
        self._change_feed_cap = change_feed_cap
        self._training_events_cap = training_events_cap
        self._all_events_cap = all_events_cap
        self._finished_events_kept = finished_events_kept
        self._max_active_per_owner = max_active_per_owner  # 0: no cap
        self._clock = clock
        self._ids = TrainingIds()
        # The keys that name no training (every create names them all): made once.
        self._all_key = self._k("idx", "all")
        self._pending_key = self._k("idx", "phase", Phase.PENDING)
        self._all_events_key = self._k("events")
        self._changes_key = self._k("changes")
        self._active_phase_keys = tuple(self._k("idx", "phase", p) for p in ACTIVE_PHASES)
        self._create = client.register_script(_lua("create.lua"))
        self._cancel = client.register_script(_lua("cancel.lua"))
        self._status = client.register_script(_lua("status.lua"))
        self._remove = client.register_script(_lua("remove.lua"))
        self._hold = client.register_script(_lua("hold.lua"))
        self._progress = client.register_script(_lua("progress.lua"))
        self._stall = client.register_script(_lua("stall.lua"))
        self._keep_logs = client.register_script(_lua("keep_logs.lua"))
        # The short commands of concurrent calls go to Redis together.
        self._batched = AutoPipeline(client)

    # keys

    def _k(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    @property
    def changes_key(self) -> str:
        return self._changes_key

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # health

    @_unavailable_on_outage
    async def ping(self) -> None:
        await self._redis.ping()

    async def has_room(self) -> bool:
        """Whether Redis takes writes now: false while it is out of memory.
        Asked with a write that changes nothing (SET of a missing key, only
        if it exists), which Redis refuses for want of memory alone."""
        try:
            await self._write_probe()
        except StoreFull:
            return False
        REDIS_FULL.set(0)
        return True

    @_unavailable_on_outage
    async def _write_probe(self) -> None:
        await self._batched.execute("SET", self._k("room"), "", "XX")

    async def close(self) -> None:
        await self._batched.close()
        await self._redis.aclose()

    # desired state, written by the API

    @_unavailable_on_outage
    async def create(
        self,
        spec: pb.TrainingSpec,
        *,
        owner: str,
        request_id: str = "",
        trace_context: Mapping[str, str] | None = None,
        queue: str = "",
        priority: str = "",
        max_retries: int = 0,
    ) -> tuple[TrainingRecord, bool]:
        """Records a training; returns it and whether this call created it.
        `queue` and `priority`: where it waits for quota and its priority
        there, as the API resolved them (the spec's, or the defaults);
        `max_retries`: its retry budget, resolved the same way.

        Raises `ActiveTrainingsCapReached` when the owner is at the cap, unless
        the request id names a training already made (a retry gets it back).
        """
        if "/" in request_id:
            raise ValueError("a request id has no '/'")
        now = self._now_ms()
        training_id = self._ids.new(now)
        labels = dict(spec.labels)
        keys = [
            self._k("request", f"{owner}/{request_id}") if request_id else "",
            self._k("training", training_id),
            self._all_key,
            self._pending_key,
            self._k("idx", "owner", owner),
            self.changes_key,
            self._k("events", training_id),
            self._all_events_key,
            *self._active_phase_keys,
            *(self._k("idx", "label", f"{k}={v}") for k, v in sorted(labels.items())),
        ]
        record = TrainingRecord(
            id=training_id,
            spec=spec,
            owner=owner,
            phase=Phase.PENDING,
            reason=_SUBMITTED_REASON,
            message=_SUBMITTED_MESSAGE,
            generation=1,
            observed_generation=0,
            cancel_requested=False,
            create_time_ms=now,
            trace_context=dict(trace_context or {}),
            queue=queue,
            priority=priority,
            max_retries=max_retries,
        )
        fields = {**record.new_hash(), "request_id": request_id}
        args: list[str | int | bytes] = [
            training_id,
            now,
            self._request_id_ttl,
            self._change_feed_cap,
            self._training_events_cap,
            self._all_events_cap,
            _SUBMITTED_REASON,
            _SUBMITTED_MESSAGE,
        ]
        args.append(orjson.dumps(fields))
        args.append(self._max_active_per_owner)
        created, stored_id = await self._batched.run_script(self._create, keys, args)
        if created == -1:
            raise ActiveTrainingsCapReached(owner, self._max_active_per_owner)
        if created == -2:
            raise RequestIdOfRemovedTraining(request_id, str(stored_id))
        if not created:  # an earlier call with this request id made it
            return await self.get(str(stored_id)), False
        return record, True

    @_unavailable_on_outage
    async def cancel(self, training_id: str) -> tuple[TrainingRecord, bool]:
        """Records a cancellation; returns the training and whether it changed."""
        result = await self._batched.run_script(
            self._cancel,
            [
                self._k("training", training_id),
                self.changes_key,
                self._k("events", training_id),
                self._all_events_key,
            ],
            [
                training_id,
                self._now_ms(),
                self._change_feed_cap,
                self._training_events_cap,
                self._all_events_cap,
                _CANCEL_REASON,
                _CANCEL_MESSAGE,
                *sorted(FINAL_PHASES),
            ],
        )
        if result == -1:
            raise TrainingNotFound(training_id)
        return await self.get(training_id), result == 1

    @_unavailable_on_outage
    async def hold(self, training_id: str, *, held: bool) -> tuple[TrainingRecord, bool]:
        """Records that the user wants the training held (out of its queue)
        or released; returns the training and whether it changed."""
        result = await self._batched.run_script(
            self._hold,
            [
                self._k("training", training_id),
                self.changes_key,
                self._k("events", training_id),
                self._all_events_key,
            ],
            [
                training_id,
                self._now_ms(),
                self._change_feed_cap,
                self._training_events_cap,
                self._all_events_cap,
                "1" if held else "0",
                _HOLD_REASON if held else _RELEASE_REASON,
                _HOLD_MESSAGE if held else _RELEASE_MESSAGE,
                *sorted(FINAL_PHASES),
            ],
        )
        if result == -1:
            raise TrainingNotFound(training_id)
        return await self.get(training_id), result == 1

    # observed state, written by the controller

    @_unavailable_on_outage
    async def write_status(self, training_id: str, update: StatusUpdate) -> WriteResult:
        result = await self._batched.run_script(
            self._status,
            [
                self._k("training", training_id),
                self._k("events", training_id),
                self._all_events_key,
            ],
            [
                training_id,
                self._now_ms(),
                update.observed_generation,
                self._training_events_cap,
                self._all_events_cap,
                self._k("idx", "phase", ""),
                update.phase,
                update.reason,
                update.message,
                update.conditions_json(),
                update.job_name,
                update.attempts,
                "" if update.start_time_ms is None else update.start_time_ms,
                "" if update.finish_time_ms is None else update.finish_time_ms,
                self._finished_events_kept,
                update.queue_position,
                update.retries,
                *sorted(FINAL_PHASES),
            ],
        )
        return WriteResult(int(result))

    # progress, reported by the trainers through the API

    @_unavailable_on_outage
    async def report_progress(
        self,
        training_id: str,
        progress: progress_pb2.Progress,
        *,
        event_interval_ms: int,
        message: str,
        rate_tau_ms: int = 120_000,
    ) -> ProgressRecorded:
        """Records `progress` (report_time set here) as the training's latest;
        an event at most every `event_interval_ms`, saying `message`.
        `rate_tau_ms`: over about how long the step rate, and so the ETA, is
        averaged. Raises `TrainingNotFound`, or `TrainingFinished` when it
        finished: a finished training keeps its last progress as it was."""
        now = self._now_ms()
        progress.report_time.FromMilliseconds(now)
        reply = await self._batched.run_script(
            self._progress,
            [
                self._k("training", training_id),
                self._k("events", training_id),
                self._all_events_key,
                self._k("progress", "reported"),
                self._k("progress", "stalled"),
            ],
            [
                training_id,
                now,
                encode_progress(progress),
                progress.step,
                progress.total_steps,
                event_interval_ms,
                self._training_events_cap,
                self._all_events_cap,
                message,
                rate_tau_ms,
                *sorted(FINAL_PHASES),
            ],
        )
        outcome = int(reply[0])
        if outcome == -1:
            raise TrainingNotFound(training_id)
        if outcome == 0:
            raise TrainingFinished(training_id, Phase(str(reply[1])))
        eta = str(reply[1])
        return ProgressRecorded(eta_ms=int(eta) if eta else None, event=outcome == 2)

    @_unavailable_on_outage
    async def stall_candidates(self, *, reported_before_ms: int, count: int) -> list[str]:
        """The trainings to look at for a stall: up to `count` of those whose
        last report is older than `reported_before_ms`, and every one marked
        stalled (to clear those no longer running)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(
                self._k("progress", "reported"),
                "-inf",
                f"({reported_before_ms}",
                byscore=True,
                offset=0,
                num=count,
            )
            pipe.zrange(self._k("progress", "stalled"), 0, -1)
            old, stalled = await pipe.execute()
        return list(dict.fromkeys([*old, *stalled]))

    @_unavailable_on_outage
    async def mark_stalled(
        self, training_ids: Sequence[str], *, reported_before_ms: int, message: str
    ) -> list[str]:
        """Marks stalled each of the trainings that runs and last reported
        before `reported_before_ms`, with an event saying `message`; clears
        those no longer running. Returns the ids marked now."""
        now = self._now_ms()
        marked: list[str] = []
        for training_id in training_ids:
            result = await self._batched.run_script(
                self._stall,
                [
                    self._k("training", training_id),
                    self._k("events", training_id),
                    self._all_events_key,
                    self._k("progress", "reported"),
                    self._k("progress", "stalled"),
                ],
                [
                    training_id,
                    now,
                    reported_before_ms,
                    self._training_events_cap,
                    self._all_events_cap,
                    message,
                    Phase.RUNNING,
                ],
            )
            if int(result) == 1:
                marked.append(training_id)
        return marked

    @_unavailable_on_outage
    async def count_stalled(self) -> int:
        return int(await self._redis.zcard(self._k("progress", "stalled")))

    # reads

    @_unavailable_on_outage
    async def get(self, training_id: str) -> TrainingRecord:
        values = await self._batched.execute("HGETALL", self._k("training", training_id))
        if not values:
            owner = await self._batched.execute("GET", self._k("removed", training_id))
            if owner is not None:
                raise TrainingRemoved(training_id, str(owner))
            raise TrainingNotFound(training_id)
        return TrainingRecord.from_hash(cast(dict[str, str], values))

    @_unavailable_on_outage
    async def get_many(self, training_ids: Sequence[str]) -> list[TrainingRecord | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for training_id in training_ids:
                pipe.hgetall(self._k("training", training_id))
            rows: list[dict[str, str]] = await pipe.execute()
        return [TrainingRecord.from_hash(row) if row else None for row in rows]

    @_unavailable_on_outage
    async def list_page(
        self, *, page_size: int, page_token: str = "", where: ListFilter | None = None
    ) -> tuple[list[TrainingRecord], str]:
        """One page of trainings, newest first, and the token of the next."""
        where = where or ListFilter()
        after = self._decode_page_token(page_token, where) if page_token else None
        index = self._index_for(where)
        page: list[TrainingRecord] = []
        batch = min(max(page_size + 1, 50), 500)
        scanned = 0
        upper = f"({after}" if after else "+"
        while scanned < _MAX_SCAN_PER_PAGE:
            ids = cast(
                list[str],
                await self._redis.zrange(
                    index, upper, "-", desc=True, bylex=True, offset=0, num=batch
                ),
            )
            if not ids:
                return page, ""
            scanned += len(ids)
            for record in await self.get_many(ids):
                if record is not None and where.matches(record):
                    if len(page) == page_size:
                        return page, self._encode_page_token(page[-1].id, where)
                    page.append(record)
            upper = f"({ids[-1]}"
        # Bounded work per call: hand back what was found and where to go on.
        return page, self._encode_page_token(upper[1:], where)

    def page_token_after(self, training_id: str, where: ListFilter) -> str:
        """The token of the page that starts after `training_id`: for a caller
        that hands back less of a page than it was given."""
        return self._encode_page_token(training_id, where)

    def _index_for(self, where: ListFilter) -> str:
        if where.labels:
            key, value = sorted(where.labels.items())[0]
            return self._k("idx", "label", f"{key}={value}")
        if where.owner:
            return self._k("idx", "owner", where.owner)
        if where.phase is not None:
            return self._k("idx", "phase", where.phase)
        return self._all_key

    @staticmethod
    def _encode_page_token(after: str, where: ListFilter) -> str:
        raw = json.dumps({"after": after, "filter": where.digest()}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_page_token(token: str, where: ListFilter) -> str:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            value = json.loads(raw)
            after, digest = value["after"], value["filter"]
        except (ValueError, KeyError, TypeError) as err:
            raise InvalidCursor("page_token is not one this server handed out") from err
        if digest != where.digest():
            raise InvalidCursor("page_token belongs to a list call with other filters")
        return str(after)

    async def unfinished_ids(self, batch: int = 1000) -> AsyncIterator[list[str]]:
        """The id of every training not finished, phase by phase, oldest
        first, in batches (for a full resync): from the phase indexes, so the
        trainings finished long ago, most of them in time, cost nothing."""
        for phase in ACTIVE_PHASES:
            index = self._k("idx", "phase", phase)
            lower = "-"
            while True:
                ids = await self._id_batch(index, lower, batch)
                if not ids:
                    break
                yield ids
                lower = f"({ids[-1]}"

    @_unavailable_on_outage
    async def _id_batch(self, index: str, lower: str, batch: int) -> list[str]:
        return cast(
            list[str], await self._redis.zrange(index, lower, "+", bylex=True, offset=0, num=batch)
        )

    @_unavailable_on_outage
    async def count_by_phase(self) -> dict[Phase, int]:
        """How many trainings are in each phase (from the phase indexes)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for phase in Phase:
                pipe.zcard(self._k("idx", "phase", phase))
            counts: list[int] = await pipe.execute()
        return dict(zip(Phase, counts, strict=True))

    @_unavailable_on_outage
    async def oldest_in_phase(self, phase: Phase) -> str | None:
        """The id of the earliest recorded training now in `phase`: ids sort
        by creation time, and so does each phase index."""
        ids = await self._redis.zrange(
            self._k("idx", "phase", phase), "-", "+", bylex=True, offset=0, num=1
        )
        return str(ids[0]) if ids else None

    # retention: finished trainings removed after a while

    @_unavailable_on_outage
    async def finished_ids(
        self, phase: Phase, *, recorded_by_ms: int, after: str = "", count: int
    ) -> list[str]:
        """Up to `count` ids of the final `phase`'s index recorded at or
        before `recorded_by_ms`, oldest first, after `after`. A training
        finishes after it was recorded, so these are where the trainings
        finished by then are, without a look at any other."""
        lower = f"({after}" if after else "-"
        # Ids start with their millisecond in 12 hex digits: each id of a
        # later millisecond sorts after this prefix, each of this one before.
        upper = f"({recorded_by_ms + 1:012x}"
        ids = await self._redis.zrange(
            self._k("idx", "phase", phase), lower, upper, bylex=True, offset=0, num=count
        )
        return cast(list[str], ids)

    @_unavailable_on_outage
    async def remove_finished(
        self,
        phase: Phase,
        training_ids: Sequence[str],
        *,
        finished_by_ms: int,
        tombstone_seconds: int,
    ) -> list[Removal]:
        """Removes each of the trainings (found in the final `phase`'s index)
        that finished at or before `finished_by_ms`, one script each, with
        everything of it; leaves a tombstone for `tombstone_seconds` (0:
        none). The script reads again whether and when the training
        finished: an unfinished one is never touched."""
        records = await self.get_many(training_ids)
        results = [Removal.KEPT] * len(training_ids)
        calls: dict[int, tuple[Any, ...]] = {}
        for i, (training_id, record) in enumerate(zip(training_ids, records, strict=True)):
            if record is not None and (
                not record.phase.is_final or (record.finish_time_ms or 0) > finished_by_ms
            ):
                continue  # kept; no need to ask
            labels = sorted(record.spec.labels.items()) if record else []
            keys = [
                self._k("training", training_id),
                self._k("events", training_id),
                self._k("removed", training_id),
                self._all_key,
                self._k("idx", "phase", phase),
                *(self._k("idx", "label", f"{k}={v}") for k, v in labels),
            ]
            args = [training_id, finished_by_ms, tombstone_seconds, self._prefix]
            calls[i] = ("EVALSHA", self._remove.sha, len(keys), *keys, *args, *FINAL_PHASES)
        for attempt in range(2):
            replies = await self._pipeline(list(calls.values()))
            unloaded = {}
            for (i, call), reply in zip(calls.items(), replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    unloaded[i] = call  # Redis lost its scripts: this one did not run
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    results[i] = Removal(int(reply))
            if not unloaded:
                break
            await self._redis.script_load(self._remove.script)
            calls = unloaded
        return results

    async def _pipeline(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """The replies of `commands`, sent together; an error reply is that
        command's own."""
        if not commands:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    # the ends of finished trainings' logs

    @_unavailable_on_outage
    async def keep_logs(self, training_id: str, logs: Sequence[KeptLog]) -> bool:
        """Keeps the end of each rank's log with the training (replacing what
        was kept of those ranks); False when the training is gone."""
        if not logs:
            return True
        args: list[str] = []
        for kept in logs:
            args += [str(kept.rank), kept.encode()]
        keys = [self._k("training", training_id), self._k("logs", training_id)]
        return bool(await self._keep_logs(keys=keys, args=args))

    @_unavailable_on_outage
    async def kept_logs(self, training_id: str) -> dict[int, KeptLog]:
        """The ends of the training's logs that were kept, by rank."""
        values = cast(dict[str, str], await self._redis.hgetall(self._k("logs", training_id)))
        return {int(rank): KeptLog.decode(int(rank), value) for rank, value in values.items()}

    # events, for the watch calls

    @_unavailable_on_outage
    async def training_events(
        self, training_id: str, *, after: str = "0", block_ms: int | None = None
    ) -> list[TrainingEvent]:
        return await self._read_events(self._k("events", training_id), after, block_ms)

    @_unavailable_on_outage
    async def all_events(
        self, *, after: str = "$", block_ms: int | None = None
    ) -> list[TrainingEvent]:
        return await self._read_events(self._all_events_key, after, block_ms)

    @_unavailable_on_outage
    async def check_events_kept(self, after: str, training_id: str | None = None) -> None:
        """Raises `HistoryTrimmed` when some event after `after` (of the
        training, or of all trainings) was trimmed by the cap: a watch
        resuming there would miss it without knowing."""
        key = self._k("events", training_id) if training_id else self._all_events_key
        try:
            info = await self._redis.xinfo_stream(key)
        except ResponseError as err:
            if "no such key" in str(err):
                return  # no stream: nothing was ever trimmed from it
            raise
        # Trimming takes the oldest entries. If the oldest one kept is newer
        # than `after`, the entries between went (all of them, or all but
        # `after` itself: then a client is told so needlessly, never misled).
        # Redis 7 also counts what was ever added, so an untrimmed stream
        # says so.
        first = info.get("first-entry")
        added = info.get("entries-added")
        untrimmed = added is not None and added <= info.get("length", 0)
        if first is None or untrimmed or _event_id(str(first[0])) <= _event_id(after):
            return
        raise HistoryTrimmed(
            f"events after {after} are no longer kept (only the most recent are); "
            "read the training's current state and watch from there"
        )

    @_unavailable_on_outage
    async def last_event_id(self) -> str:
        """The id of the newest event of all trainings; "0-0" before the first."""
        entries = await self._redis.xrevrange(self._all_events_key, count=1)
        return str(entries[0][0]) if entries else "0-0"

    async def _read_events(self, key: str, after: str, block_ms: int | None) -> list[TrainingEvent]:
        try:
            streams = cast(
                _Streams, await self._redis.xread({key: after}, count=100, block=block_ms)
            )
        except ResponseError as err:
            if "Invalid stream ID" in str(err):
                raise InvalidCursor(
                    f"event id {after!r} is not one this server handed out"
                ) from err
            raise
        return [
            TrainingEvent.from_stream(str(entry_id), values)
            for _, entries in streams
            for entry_id, values in entries
        ]

    # the change feed, read by the controller

    @_unavailable_on_outage
    async def ensure_consumer_group(self, group: str) -> None:
        try:
            await self._redis.xgroup_create(self.changes_key, group, id="0", mkstream=True)
        except OutOfMemoryError:
            # Refused before Redis looked: a leader starting while Redis is
            # full goes on with the group it has.
            if not any(info["name"] == group for info in await self._feed_groups()):
                raise
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def _feed_groups(self) -> list[dict[str, Any]]:
        try:
            groups: list[dict[str, Any]] = await self._redis.xinfo_groups(self.changes_key)
            return groups
        except ResponseError as err:
            if "no such key" in str(err):
                return []
            raise

    @_unavailable_on_outage
    async def read_changes(
        self, group: str, consumer: str, *, count: int = 100, block_ms: int | None = None
    ) -> list[Change]:
        streams = cast(
            _Streams,
            await self._redis.xreadgroup(
                group, consumer, {self.changes_key: ">"}, count=count, block=block_ms
            ),
        )
        return [_change(str(i), v) for _, entries in streams for i, v in entries]

    @_unavailable_on_outage
    async def claim_stale_changes(
        self, group: str, consumer: str, *, min_idle_ms: int, after: str = "0-0", count: int = 100
    ) -> tuple[str, list[Change]]:
        """Takes over entries a crashed consumer read but never acknowledged,
        from `after` on; returns where the next call starts ("0-0" when the
        scan is done) and the entries."""
        result: list[Any] = await self._redis.xautoclaim(
            self.changes_key,
            group,
            consumer,
            min_idle_time=min_idle_ms,
            start_id=after,
            count=count,
        )
        return str(result[0]), [_change(str(i), v) for i, v in result[1] if v]

    @_unavailable_on_outage
    async def ack_changes(self, group: str, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            # Each reconcile acknowledges its own entries: in a burst, hundreds
            # a second, which go together with the other short commands.
            await self._batched.execute("XACK", self.changes_key, group, *entry_ids)

    @_unavailable_on_outage
    async def change_feed_lag(self, group: str) -> int:
        """Entries not yet acknowledged: delivered-but-pending plus undelivered."""
        for info in await self._redis.xinfo_groups(self.changes_key):
            if info["name"] == group:
                return int(info.get("pending") or 0) + int(info.get("lag") or 0)
        return 0


def open_store(settings: CommonSettings, **options: Any) -> TrainingStore:
    """The store on the Redis of `settings`, under its key prefix and
    trimming events by its caps: both services write events, so both must
    trim alike. `options`: what only one service sets."""
    return TrainingStore(
        connect(settings),
        prefix=settings.redis_key_prefix,
        training_events_cap=settings.training_events_cap,
        all_events_cap=settings.all_events_cap,
        **options,
    )


def _change(entry_id: str, values: dict[str, str]) -> Change:
    return Change(entry_id, values["training_id"], int(values["generation"]))


def _lua(name: str) -> str:
    return resources.files("trainconductor_core").joinpath("lua", name).read_text()
