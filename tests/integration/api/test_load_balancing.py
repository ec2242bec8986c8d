"""Client-side round_robin over two API processes (what the chart's headless
Service is for): calls reach both, and a client of a restarted replica
reconnects by itself."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.ports import free_port
from devstack.processes import Service
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec


def start_replica(name: str, redis_server: RedisServer, port: int, http_port: int,
                  log_dir: Path) -> Service:  # fmt: skip
    replica = Service(
        name,
        "trainconductor_api.main",
        {
            "TC_REDIS_URL": redis_server.url,
            "TC_REDIS_KEY_PREFIX": "lb:",
            "TC_GRPC_HOST": "127.0.0.1",
            "TC_GRPC_PORT": str(port),
            "TC_HTTP_PORT": str(http_port),
            "TC_DRAIN_SECONDS": "1",
        },
        log_dir,
    ).start()
    replica.wait_http_ok(f"http://127.0.0.1:{http_port}/metrics")
    return replica


def gets_served(http_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if (
                line.startswith("grpc_server_handled_total{")
                and 'grpc_method="GetTraining"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_round_robin_spreads_calls_and_survives_a_replica_restart(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    http_ports = [free_port(), free_port()]
    replicas = [
        start_replica(f"api-{i}", redis_server, ports[i], http_ports[i], tmp_path) for i in range(2)
    ]
    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
    options = [("grpc.lb_policy_name", "round_robin")]
    try:
        with grpc.insecure_channel(target, options=options) as channel:
            stub = pb_grpc.TrainingServiceStub(channel)
            training = stub.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec())).training
            for _ in range(40):
                stub.GetTraining(pb.GetTrainingRequest(id=training.id), timeout=5)
            served = [gets_served(p) for p in http_ports]
            assert all(n >= 10 for n in served), f"calls per replica: {served}"

            # Replica 0 goes away (a rollout) and comes back on its address.
            assert replicas[0].stop() == 0
            for _ in range(10):  # the other replica takes every call meanwhile
                stub.GetTraining(pb.GetTrainingRequest(id=training.id), timeout=5)
            replicas[0] = start_replica("api-0", redis_server, ports[0], http_ports[0], tmp_path)
            deadline = time.monotonic() + 20
            while gets_served(http_ports[0]) == 0 and time.monotonic() < deadline:
                stub.GetTraining(pb.GetTrainingRequest(id=training.id), timeout=5)
            assert gets_served(http_ports[0]) > 0, (
                "the client never came back to the restarted replica"
            )
    finally:
        for replica in replicas:
            replica.kill()
