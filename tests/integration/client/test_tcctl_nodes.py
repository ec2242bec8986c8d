"""`tcctl` and multi-node trainings, against the real API and Redis:
`create --nodes`, and what get and watch show of ranks and attempts."""

from __future__ import annotations

from google.protobuf import json_format
from trainconductor.v1 import training_service_pb2 as pb

from tests.support.tcctl import EXAMPLES, tcctl_async
from trainconductor_api.server import ApiServer
from trainconductor_core.phases import Phase
from trainconductor_core.record import Condition, StatusUpdate
from trainconductor_core.store import TrainingStore


def address(api: ApiServer) -> str:
    return f"127.0.0.1:{api.port}"


async def test_create_nodes_and_retries_then_get_shows_ranks_and_attempts(
    api: ApiServer, store: TrainingStore
) -> None:
    created = await tcctl_async(
        address(api), "create", "-f", str(EXAMPLES / "lora.yaml"),
        "--nodes", "4", "--gpus", "8", "--max-retries", "3", "-o", "json",
    )  # fmt: skip
    assert created.code == 0, created.err
    training = json_format.Parse(created.out, pb.Training())
    assert (training.spec.resources.nodes, training.spec.max_retries) == (4, 3)

    ranks = tuple(
        Condition(f"Rank{r}", "True" if r != 2 else "False", "Running", "running on kwok-gpu-0")
        for r in range(4)
    )
    name = f"train-{training.id}-a2"
    waits = (
        "3/4 ranks running; rank 2 waits: 0/6 nodes are available: 4 Insufficient nvidia.com/gpu."
    )
    await store.write_status(
        training.id,
        StatusUpdate(1, Phase.QUEUED, "Unschedulable", waits, name, 2, ranks, retries=1),
    )
    shown = await tcctl_async(address(api), "get", training.id)
    assert shown.code == 0, shown.err
    fields = {k: v.strip() for k, v in (line.split(":", 1) for line in shown.out.splitlines())}
    # A condition per rank.
    assert fields["Message"] == waits
    assert fields["Nodes"] == "4, 8 GPUs each"
    assert fields["Attempts"] == "2 (1 of 3 retries spent)"
    assert fields["Job"] == name
    assert "  Rank2  False Running: running on kwok-gpu-0" in shown.out.splitlines()


async def test_watch_marks_each_event_with_its_attempt_once_there_are_two(
    api: ApiServer, store: TrainingStore
) -> None:
    created = await tcctl_async(
        address(api), "create", "-f", str(EXAMPLES / "lora.yaml"), "--nodes", "2", "-o", "name"
    )
    training_id = created.out.strip()
    first, second = f"train-{training_id}", f"train-{training_id}-a2"
    restarting = (
        "attempt 2: rank 1 exited with code 3 in attempt 1; the gang restarts (retry 1 of 1)"
    )
    for update in (
        StatusUpdate(1, Phase.QUEUED, "JobCreated", "the Job was created", first, 1),
        StatusUpdate(1, Phase.RUNNING, "Running", "2/2 ranks running", first, 1),
        StatusUpdate(1, Phase.QUEUED, "Restarting", restarting, second, 2, retries=1),
        StatusUpdate(1, Phase.RUNNING, "Running", "2/2 ranks running", second, 2, retries=1),
        StatusUpdate(1, Phase.COMPLETED, "Completed", "the training completed", second, 2),
    ):
        await store.write_status(training_id, update)

    run = await tcctl_async(address(api), "watch", training_id)
    assert run.code == 0, run.err
    said = [line.split(None, 3)[3] for line in run.out.splitlines()]
    assert said[1:] == [
        "the Job was created",
        "2/2 ranks running",
        restarting,
        "attempt 2: 2/2 ranks running",
        "attempt 2: the training completed",
    ]
