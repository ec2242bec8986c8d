"""StreamTrainingLogs through real gRPC calls over a real Redis, on an API
that reads no pods (pod_logs_enabled off): the end of the log kept with a
finished training, its tail and its recent lines; bad requests refused
naming each field."""

from __future__ import annotations

import datetime

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from prometheus_client import REGISTRY
from trainconductor.v1 import training_service_pb2 as pb

from devstack.pod_logs import cri_line
from devstack.specs import lora_spec
from tests.support.grpc_errors import violated_fields
from tests.support.trainings import Stub, create
from trainconductor_core.kept_logs import KeptLog
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore

KEPT_LINES_SENT = (
    "trainconductor_api_log_lines_sent_total",
    {"source": "kept", "truncated": "false"},
)


def stamped(text: str, seconds_ago: float) -> str:
    """A line as Kubernetes sends it with timestamps, written `seconds_ago`."""
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    time, _, _, rest = cri_line(text, when).split(" ", 3)  # CRI: time stream tag text
    return f"{time} {rest}"


async def failed_with_kept_log(trainings: Stub, store: TrainingStore) -> str:
    training = await create(trainings, spec=lora_spec())
    update = StatusUpdate(1, Phase.FAILED, "Error", "exit code 1", "train-x", finish_time_ms=1)
    await store.write_status(training.id, update)
    log = stamped("epoch 1", 3600) + stamped("epoch 2", 120) + stamped("ValueError: no text", 60)
    await store.keep_logs(training.id, [KeptLog(0, 1, "train-x-abcde", log, earlier_dropped=True)])
    return training.id


async def read(trainings: Stub, **fields: object) -> list[pb.StreamTrainingLogsResponse]:
    request = pb.StreamTrainingLogsRequest(**fields)  # type: ignore[arg-type]
    return [response async for response in trainings.StreamTrainingLogs(request, timeout=10)]


async def test_a_finished_trainings_kept_log_is_served_whole_or_in_part(
    trainings: Stub, store: TrainingStore
) -> None:
    training_id = await failed_with_kept_log(trainings, store)
    sent = REGISTRY.get_sample_value(*KEPT_LINES_SENT) or 0
    (whole,) = await read(trainings, id=training_id)
    assert REGISTRY.get_sample_value(*KEPT_LINES_SENT) == sent + 3
    assert [line.text for line in whole.lines] == ["epoch 1", "epoch 2", "ValueError: no text"]
    assert (whole.source, whole.attempt, whole.pod) == (pb.LOG_SOURCE_KEPT, 1, "train-x-abcde")
    assert whole.earlier_lines_dropped
    assert whole.lines[0].time.seconds > 0
    (tail,) = await read(trainings, id=training_id, tail_lines=1)
    assert [line.text for line in tail.lines] == ["ValueError: no text"]
    (recent,) = await read(trainings, id=training_id, since=Duration(seconds=600))
    assert [line.text for line in recent.lines] == ["epoch 2", "ValueError: no text"]
    # A follow of a finished training sends what is kept, and ends.
    (followed,) = await read(trainings, id=training_id, follow=True)
    assert len(followed.lines) == 3


async def test_an_attempt_or_rank_that_is_not_there_is_out_of_range(
    trainings: Stub, store: TrainingStore
) -> None:
    training_id = await failed_with_kept_log(trainings, store)
    for fields, says in [({"attempt": 2}, "only its last attempt's"), ({"rank": 1}, "has 1 rank")]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read(trainings, id=training_id, **fields)
        assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert says in (err.value.details() or "")


async def test_bad_fields_are_refused_naming_each(trainings: Stub) -> None:
    training = await create(trainings, spec=lora_spec())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read(trainings, id=training.id, rank=-1, tail_lines=-5, since=Duration(seconds=-1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == ["rank", "tail_lines", "since"]
