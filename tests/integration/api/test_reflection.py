"""Server reflection as tools outside the project use it: grpcurl (grpc-go's
reflection client, the same lookups as Postman and Evans) lists the services,
describes methods with their request and response types, and calls one."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from trainconductor_api.server import ApiServer

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Grpcurl:
    path: str

    async def __call__(
        self, api: ApiServer, *args: str, flags: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """grpcurl [flags] ADDRESS [args]: `list`, `describe SYMBOL` or a method to call."""
        # A process of its own: the API serves from this test's event loop,
        # which a blocking run would stall.
        process = await asyncio.create_subprocess_exec(
            self.path,
            "-plaintext",
            *flags,
            f"127.0.0.1:{api.port}",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return subprocess.CompletedProcess(
            [self.path, *flags, *args], process.returncode, out.decode(), err.decode()
        )


@pytest.fixture(scope="session")
def grpcurl() -> Grpcurl:
    # The tools' bin directory as the Makefile finds it.
    tools = subprocess.run(
        [str(ROOT / "hack" / "tools" / "install.sh"), "--print"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    path = Path(tools) / "grpcurl"
    if not os.access(path, os.X_OK):
        pytest.fail(f"grpcurl is missing from {tools}: run `make tools` (hack/tools/install.sh)")
    return Grpcurl(str(path))


async def test_grpcurl_lists_every_service(grpcurl: Grpcurl, api: ApiServer) -> None:
    listed = await grpcurl(api, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        "trainconductor.v1.TrainingService",
        "train_conductor.service.training.TrainConductor",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


@pytest.mark.parametrize(
    ("method", "signature"),
    [
        pytest.param(
            "trainconductor.v1.TrainingService.CreateTraining",
            "rpc CreateTraining ( .trainconductor.v1.CreateTrainingRequest )"
            " returns ( .trainconductor.v1.CreateTrainingResponse );",
            id="the v1 create method",
        ),
        pytest.param(
            "trainconductor.v1.TrainingService.WatchTrainings",
            "rpc WatchTrainings ( .trainconductor.v1.WatchTrainingsRequest )"
            " returns ( stream .trainconductor.v1.WatchTrainingsResponse );",
            id="a v1 streaming method",
        ),
        pytest.param(
            "train_conductor.service.training.TrainConductor.Train",
            "rpc Train ( .train_conductor.service.training.TrainingRequest )"
            " returns ( .train_conductor.service.training.TrainingJob );",
            id="the legacy train method",
        ),
    ],
)
async def test_grpcurl_describes_a_method_with_its_request_and_response(
    grpcurl: Grpcurl, api: ApiServer, method: str, signature: str
) -> None:
    described = await grpcurl(api, "describe", method)
    assert described.returncode == 0, described.stderr
    assert f"{method} is a method:" in described.stdout
    assert signature in described.stdout


async def test_grpcurl_describes_the_request_type_it_was_told_of(
    grpcurl: Grpcurl, api: ApiServer
) -> None:
    described = await grpcurl(api, "describe", "trainconductor.v1.CreateTrainingRequest")
    assert described.returncode == 0, described.stderr
    assert ".trainconductor.v1.TrainingSpec spec = 1;" in described.stdout


async def test_grpcurl_is_told_a_method_the_service_lacks_is_not_found(
    grpcurl: Grpcurl, api: ApiServer
) -> None:
    described = await grpcurl(api, "describe", "trainconductor.v1.TrainingService.Nope")
    assert described.returncode != 0
    assert "Symbol not found: trainconductor.v1.TrainingService.Nope" in described.stderr


async def test_grpcurl_calls_a_method_it_learned_through_reflection(
    grpcurl: Grpcurl, api: ApiServer, trainings: pb_grpc.TrainingServiceAsyncStub
) -> None:
    created = await trainings.CreateTraining(pb.CreateTrainingRequest(spec=lora_spec()), timeout=5)
    got = await grpcurl(
        api,
        "trainconductor.v1.TrainingService/GetTraining",
        flags=("-d", json.dumps({"id": created.training.id})),
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["training"]["id"] == created.training.id
