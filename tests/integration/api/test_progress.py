"""ReportProgress through real gRPC calls, over a real Redis, under auth
mode "none" (a report names its training; the pod-token checks run end to
end against a real apiserver in tests/e2e/test_progress.py)."""

from __future__ import annotations

import asyncio
import math
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from trainconductor.v1 import progress_pb2
from trainconductor.v1 import progress_service_pb2 as ppb
from trainconductor.v1 import progress_service_pb2_grpc as ppb_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.redis_server import RedisServer
from tests.support.api import StartApi
from tests.support.certificates import Certificates
from tests.support.grpc_errors import violated_fields
from tests.support.security import plain_channel, tls_channel
from tests.support.trainings import create
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.redis_connection import connect
from trainconductor_core.settings import CommonSettings
from trainconductor_core.store import TrainingStore


async def running_training(channel: grpc.aio.Channel, store: TrainingStore) -> str:
    training = await create(channel)
    await store.write_status(training.id, StatusUpdate(1, Phase.RUNNING, "Running", ""))
    return training.id


def progress(step: int, total: int = 1000) -> progress_pb2.Progress:
    return progress_pb2.Progress(step=step, total_steps=total)


async def test_a_report_shows_on_the_training_with_percent_eta_and_a_nan_loss(
    start_api: StartApi, store: TrainingStore
) -> None:
    api = await start_api()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        reports = ppb_grpc.ProgressServiceStub(channel)
        trainings = pb_grpc.TrainingServiceStub(channel)
        training_id = await running_training(channel, store)
        first = await reports.ReportProgress(
            ppb.ReportProgressRequest(
                training_id=training_id,
                progress=progress_pb2.Progress(
                    step=100, total_steps=1000, epoch=0.25, loss=1.5, learning_rate=2e-4
                ),
            )
        )
        assert first.training_id == training_id
        assert first.progress.percent == 10.0
        assert not first.progress.HasField("eta")  # one report: no rate yet
        # Steps a millisecond or more after the first: a step rate, an ETA.
        deadline = time.monotonic() + 5
        step = 150
        while True:
            second = await reports.ReportProgress(
                ppb.ReportProgressRequest(
                    training_id=training_id,
                    progress=progress_pb2.Progress(
                        step=step,
                        total_steps=1000,
                        epoch=0.5,
                        loss=math.nan,
                        tokens_per_second=950.0,
                        metrics={"grad_norm": 0.8, "eval/accuracy": 0.61},
                    ),
                )
            )
            if second.progress.HasField("eta") or time.monotonic() > deadline:
                break
            step += 1
        assert second.progress.eta.ToMilliseconds() > 0
        got = (await trainings.GetTraining(pb.GetTrainingRequest(id=training_id))).training
        assert got.progress.step == step
        assert got.progress.percent == step / 10
        assert math.isnan(got.progress.loss)
        assert got.progress.tokens_per_second == 950.0
        assert dict(got.progress.metrics) == {"grad_norm": 0.8, "eval/accuracy": 0.61}
        assert got.progress.eta == second.progress.eta
        assert abs(got.progress.report_time.ToMilliseconds() - time.time() * 1000) < 5000
        assert not got.stalled


async def test_a_bad_report_names_every_field_and_changes_nothing(
    start_api: StartApi, store: TrainingStore
) -> None:
    api = await start_api()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        reports = ppb_grpc.ProgressServiceStub(channel)
        training_id = await running_training(channel, store)
        bad = progress_pb2.Progress(
            step=20,
            total_steps=10,
            loss=math.inf,
            learning_rate=math.nan,
            metrics={"9lives": 1.0, "ok": math.nan},
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await reports.ReportProgress(
                ppb.ReportProgressRequest(training_id=training_id, progress=bad)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(err.value) == [
            "progress.step",
            "progress.loss",
            "progress.learning_rate",
            "progress.metrics['9lives']",
            "progress.metrics['ok']",
        ]
        too_many = progress_pb2.Progress(metrics={f"m{i}": 1.0 for i in range(33)})
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await reports.ReportProgress(
                ppb.ReportProgressRequest(training_id=training_id, progress=too_many)
            )
        assert violated_fields(err.value) == ["progress.metrics"]
        assert (await store.get(training_id)).progress is None


async def test_fifty_reports_a_second_make_an_event_every_interval_on_redis_and_the_watch(
    start_api: StartApi, store: TrainingStore, redis_server: RedisServer, key_prefix: str
) -> None:
    api = await start_api(progress_event_interval_seconds=1.0, progress_rate_per_second=1000)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        reports = ppb_grpc.ProgressServiceStub(channel)
        trainings = pb_grpc.TrainingServiceStub(channel)
        training_id = await running_training(channel, store)
        seen: list[pb.TrainingEvent] = []

        async def watch() -> None:
            request = pb.WatchTrainingRequest(id=training_id)
            async for response in trainings.WatchTraining(request):
                seen.append(response.event)

        watching = asyncio.create_task(watch())
        redis = connect(CommonSettings(redis_url=redis_server.url))
        try:
            events_key = f"{key_prefix}events:{training_id}"
            before = await redis.xlen(events_key)
            started = time.monotonic()
            sent = 0
            while (elapsed := time.monotonic() - started) < 3.0:
                await reports.ReportProgress(
                    ppb.ReportProgressRequest(training_id=training_id, progress=progress(sent))
                )
                sent += 1
                await asyncio.sleep(max(0.0, sent / 50 - (time.monotonic() - started)))
            assert sent >= 140  # about 50 a second, the machine permitting
            added = await redis.xlen(events_key) - before
            # One at the start and one per whole second since: 3 or 4 in 3 s.
            assert 1 <= added <= math.ceil(elapsed) + 1
            deadline = time.monotonic() + 5
            while sum(e.reason == "Progress" for e in seen) < added:
                assert time.monotonic() < deadline, f"the watch saw {len(seen)} events"
                await asyncio.sleep(0.05)
            shown = [e for e in seen if e.reason == "Progress"]
            assert len(shown) == added
            assert all(e.HasField("progress") and e.phase == pb.PHASE_RUNNING for e in shown)
            assert all(e.message.startswith("step ") for e in shown)
        finally:
            watching.cancel()
            await redis.aclose()


async def test_a_training_reporting_too_fast_is_told_to_drop_reports(
    start_api: StartApi, store: TrainingStore
) -> None:
    api = await start_api(progress_rate_per_second=1.0, progress_burst=5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        reports = ppb_grpc.ProgressServiceStub(channel)
        training_id = await running_training(channel, store)
        other_id = await running_training(channel, store)
        codes = []
        for step in range(10):
            try:
                await reports.ReportProgress(
                    ppb.ReportProgressRequest(training_id=training_id, progress=progress(step))
                )
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as err:
                codes.append(err.code())
                refusal = err
        assert codes[:5] == [grpc.StatusCode.OK] * 5
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[5:]
        status = rpc_status.from_call(refusal)  # type: ignore[arg-type]
        assert status is not None
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry)
        # Another training's reports are not held up by it.
        await reports.ReportProgress(
            ppb.ReportProgressRequest(training_id=other_id, progress=progress(1))
        )


async def test_a_finished_training_takes_no_report_and_an_unknown_one_is_not_found(
    start_api: StartApi, store: TrainingStore
) -> None:
    api = await start_api()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        reports = ppb_grpc.ProgressServiceStub(channel)
        training_id = await running_training(channel, store)
        await store.write_status(training_id, StatusUpdate(1, Phase.COMPLETED, "Completed", ""))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await reports.ReportProgress(
                ppb.ReportProgressRequest(training_id=training_id, progress=progress(1))
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "COMPLETED" in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await reports.ReportProgress(
                ppb.ReportProgressRequest(training_id="0" * 20, progress=progress(1))
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_pod_without_the_grpc_ports_tls_reports_on_the_progress_port(
    start_api: StartApi, store: TrainingStore, certificates: Certificates
) -> None:
    """The gRPC port wants TLS (a client certificate, with mTLS), which a
    training pod does not have; ProgressService alone answers on its own port
    as well."""
    api = await start_api(**certificates.server_tls(), progress_grpc_port=0)
    assert api.progress_port not in (0, api.port)
    async with tls_channel(api.port, certificates.ca.cert) as channel:
        training_id = await running_training(channel, store)
    async with plain_channel(api.progress_port) as channel:
        recorded = await ppb_grpc.ProgressServiceStub(channel).ReportProgress(
            ppb.ReportProgressRequest(training_id=training_id, progress=progress(5))
        )
        assert recorded.progress.percent == 0.5
        # Nothing but ProgressService there.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TrainingServiceStub(channel).GetTraining(
                pb.GetTrainingRequest(id=training_id)
            )
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    async with plain_channel(api.port) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ppb_grpc.ProgressServiceStub(channel).ReportProgress(
                ppb.ReportProgressRequest(training_id=training_id, progress=progress(6)),
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # no TLS, no handshake
