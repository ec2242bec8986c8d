"""SIGTERM: health turns NOT_SERVING, calls in flight finish, exit code 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec

SERVICE = "trainconductor.v1.TrainingService"


def test_sigterm_drains_then_exits_zero(redis_server: RedisServer, tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    api = Service(
        "api",
        "trainconductor_api.main",
        {
            "TC_REDIS_URL": redis_server.url,
            "TC_REDIS_KEY_PREFIX": "drain:",
            "TC_GRPC_HOST": "127.0.0.1",
            "TC_GRPC_PORT": str(port),
            "TC_HTTP_PORT": str(http_port),
            "TC_DRAIN_SECONDS": "3",
        },
        tmp_path,
    ).start()
    api.wait_http_ok(f"http://127.0.0.1:{http_port}/metrics")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        trainings = pb_grpc.TrainingServiceStub(channel)
        # The typed stubs of grpc_health list no methods.
        health: Any = health_pb2_grpc.HealthStub(channel)
        training = trainings.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec())).training
        # A watch in flight: it must be allowed to go on while draining.
        stream = trainings.WatchTraining(pb.WatchTrainingRequest(id=training.id))
        first = next(stream)
        assert first.event.phase == pb.PHASE_PENDING

        statuses: list[int] = []

        def watch_health() -> None:
            try:
                for response in health.Watch(health_pb2.HealthCheckRequest(service=SERVICE)):
                    statuses.append(response.status)
            except grpc.RpcError:
                pass  # the server went away, as it should

        threading.Thread(target=watch_health, daemon=True).start()
        time.sleep(0.3)
        assert api.process is not None
        api.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = api.process.wait(15)
        took = time.monotonic() - started
    assert code == 0, api.log_tail()
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
    assert 2.5 < took < 10, f"drained for {took:.1f}s; the grace period is 3s"
    assert "draining" in api.log_path.read_text()
