"""A trainer reporting through the client's Reporter and its Hugging Face
Trainer callback, to the real API over a real Redis (auth mode "none": the
report names its training, as TC_TRAINING_ID has it), and what `tcctl get`
then shows.

The callback is driven through transformers' own CallbackHandler with real
TrainingArguments and TrainerState, the objects and the calls a Trainer
makes (`on_train_begin`, `on_log` at each logging step, `on_train_end`). A
whole Trainer run would need torch, gigabytes with its CUDA libraries: too
heavy to install for every CI run."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path

import grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import CallbackHandler, DefaultFlowCallback

from tests.support.tcctl import tcctl_async
from tests.support.trainings import create
from trainconductor_api.server import ApiServer
from trainconductor_client.progress import Reporter
from trainconductor_client.transformers_callback import TrainConductorCallback
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore


async def running(api: ApiServer, store: TrainingStore) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        training = await create(channel)
    await store.write_status(training.id, StatusUpdate(1, Phase.RUNNING, "Running", ""))
    return training.id


async def get(api: ApiServer, training_id: str) -> pb.Training:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.TrainingServiceStub(channel)
        return (await stub.GetTraining(pb.GetTrainingRequest(id=training_id))).training


def reporter_of(api: ApiServer, training_id: str, tmp_path: Path) -> Reporter:
    """The reporter a training pod gets from its environment (the token
    file is sent, and ignored under auth mode none)."""
    token = tmp_path / "token"
    token.write_text("pod-token\n")
    found = Reporter.from_environment(
        {
            "TC_PROGRESS_ADDRESS": f"127.0.0.1:{api.port}",
            "TC_PROGRESS_TOKEN_FILE": str(token),
            "TC_TRAINING_ID": training_id,
        }
    )
    assert found is not None
    return found


async def test_a_trainer_callback_reports_each_log_step_and_tcctl_get_shows_the_bar(
    api: ApiServer, store: TrainingStore, tmp_path: Path
) -> None:
    training_id = await running(api, store)
    reporter = reporter_of(api, training_id, tmp_path)
    callback = TrainConductorCallback(reporter)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), logging_steps=10, report_to=[])
    handler = CallbackHandler(  # type: ignore[no-untyped-call]
        [DefaultFlowCallback, callback], None, None, None, None
    )
    state = TrainerState()
    state.max_steps, state.num_train_epochs = 200, 2
    control = TrainerControl()

    def train() -> None:
        # What Trainer does: begin, then at each logging step `on_log` with
        # what it logs, the state moving on between them.
        handler.on_train_begin(args, state, control)
        state.global_step, state.epoch = 50, 0.5
        logs = {"loss": 1.25, "grad_norm": 0.75, "learning_rate": 1e-4, "epoch": 0.5}
        state.log_history.append({**logs, "step": 50})
        handler.on_log(args, state, control, logs)
        state.global_step, state.epoch = 60, 0.6
        handler.on_log(args, state, control, {"loss": math.nan, "epoch": 0.6})  # too soon: dropped
        state.global_step, state.epoch = 120, 1.2
        handler.on_log(
            args, state, control, {"eval_loss": 0.9, "eval_samples_per_second": 31.5, "epoch": 1.2}
        )

    await asyncio.to_thread(train)
    reporter.close()
    got = await get(api, training_id)
    # The first log step (50): the next ones came within a second of it and
    # were dropped (the API keeps the latest report only).
    assert got.progress.step == 50
    assert got.progress.total_steps == 200
    assert got.progress.percent == 25.0
    assert got.progress.epoch == 0.5
    assert got.progress.loss == 1.25
    assert got.progress.learning_rate == 1e-4
    assert dict(got.progress.metrics) == {"grad_norm": 0.75}

    run = await tcctl_async(f"127.0.0.1:{api.port}", "get", training_id)
    assert run.code == 0, run.err
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in run.out.splitlines()}
    # The ETA from the rate of steps 0 to 50, which took this test a moment.
    assert re.fullmatch(
        r"\[#####·{15}\]  25\.0%  step 50/200  ETA \d+[smh]\S*  loss 1\.25", lines["Progress"]
    ), lines["Progress"]
    assert lines["Metrics"] == "epoch 0.5, learning_rate 0.0001, grad_norm 0.75"

    # tcctl list: a PROGRESS column, as there are trainings that report.
    listed = await tcctl_async(f"127.0.0.1:{api.port}", "list")
    assert listed.code == 0, listed.err
    header, row = listed.out.splitlines()[:2]
    assert header.split()[-2:] == ["PROGRESS", "MESSAGE"]
    assert re.search(r"  25% ETA \S+(  |$)", row), row  # the message (none here) follows


async def test_the_last_report_of_a_training_is_sent_whatever_the_interval(
    api: ApiServer, store: TrainingStore, tmp_path: Path
) -> None:
    training_id = await running(api, store)
    reporter = reporter_of(api, training_id, tmp_path)
    callback = TrainConductorCallback(reporter)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[])
    handler = CallbackHandler(  # type: ignore[no-untyped-call]
        [DefaultFlowCallback, callback], None, None, None, None
    )
    state = TrainerState()
    state.max_steps = 30
    control = TrainerControl()

    def train() -> None:
        handler.on_train_begin(args, state, control)
        state.global_step, state.epoch = 30, 3.0
        state.log_history.append({"loss": math.nan, "step": 30})
        handler.on_train_end(args, state, control)

    await asyncio.to_thread(train)
    reporter.close()
    got = await get(api, training_id)
    assert (got.progress.step, got.progress.percent) == (30, 100.0)
    assert math.isnan(got.progress.loss)  # the last one logged, shown as it was


async def test_outside_a_training_pod_and_off_the_main_process_nothing_is_reported(
    api: ApiServer, store: TrainingStore, tmp_path: Path
) -> None:
    training_id = await running(api, store)
    outside = TrainConductorCallback(environ={"HOME": "/home/me"})
    assert not outside.reporting
    outside.on_log(TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[]), TrainerState(),
                   TrainerControl(), logs={"loss": 1.0})  # fmt: skip
    reporter = reporter_of(api, training_id, tmp_path)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[])
    state = TrainerState()
    state.max_steps, state.global_step = 10, 5
    state.is_world_process_zero = False  # another rank of a multi-process run
    handler = CallbackHandler(  # type: ignore[no-untyped-call]
        [DefaultFlowCallback, TrainConductorCallback(reporter)], None, None, None, None
    )
    await asyncio.to_thread(handler.on_log, args, state, TrainerControl(), {"loss": 1.0})
    reporter.close()
    assert not (await get(api, training_id)).HasField("progress")
