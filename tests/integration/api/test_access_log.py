"""One access log line per call, with the status the client saw: a call the
client cancels is Canceled (logged at INFO and counted so), never Unknown,
which on-call reads as a server fault."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from tests.support.api import start_api_process
from tests.support.trainings import legacy_request

SERVICE = "/trainconductor.v1.TrainingService/"
LEGACY_TRAIN = "/train_conductor.service.training.TrainConductor/Train"


def access_lines(log: Path) -> list[dict[str, object]]:
    written = log.read_text().splitlines(keepends=True)  # a line being written is not yet
    lines = [json.loads(line) for line in written if line.startswith("{") and line.endswith("\n")]
    return [line for line in lines if line.get("message") == "rpc"]


def test_each_call_is_logged_once_with_its_code_and_a_cancelled_watch_is_canceled(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    api, port = start_api_process(
        tmp_path, "api", TC_REDIS_URL=redis_server.url, TC_REDIS_KEY_PREFIX=f"{tmp_path.name}:"
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TrainingServiceStub(channel)
            training = stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec())).training
            with pytest.raises(grpc.RpcError) as err:
                stub.GetTraining(pb.GetTrainingRequest(id="0" * 20))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            watch = stub.WatchTraining(pb.WatchTrainingRequest(id=training.id))
            next(watch)  # the stream is open and serving
            watch.cancel()
            job = legacy_grpc.TrainConductorStub(channel).Train(legacy_request())
        deadline = time.monotonic() + 10
        while len(access_lines(api.log_path)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        by_method = {str(line["grpc_method"]): line for line in access_lines(api.log_path)}
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{api.http_port}/metrics").read()
    finally:
        api.stop()

    assert set(by_method) == {
        *(SERVICE + m for m in ("CreateTraining", "GetTraining", "WatchTraining")),
        LEGACY_TRAIN,
    }
    assert by_method[SERVICE + "CreateTraining"]["grpc_code"] == "OK"
    # A submission's line names the training it made, by either contract.
    assert by_method[SERVICE + "CreateTraining"]["training_id"] == training.id
    assert by_method[LEGACY_TRAIN]["training_id"] == job.training_id
    assert by_method[SERVICE + "GetTraining"]["grpc_code"] == "NotFound"
    watch_line = by_method[SERVICE + "WatchTraining"]
    assert watch_line["grpc_code"] == "Canceled"
    assert watch_line["level"] == "INFO"
    assert watch_line["training_id"] == training.id
    counted = (
        'grpc_server_handled_total{grpc_code="Canceled",grpc_method="WatchTraining",'
        'grpc_service="trainconductor.v1.TrainingService",grpc_type="server_stream"} 1.0'
    )
    assert counted in metrics.decode()
