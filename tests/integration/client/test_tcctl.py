"""`tcctl` against the real API and Redis: what a user types and sees."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from tests.support.tcctl import EXAMPLES, tcctl_async
from trainconductor_api import metrics
from trainconductor_api.server import ApiServer
from trainconductor_core.phases import Phase
from trainconductor_core.record import StatusUpdate
from trainconductor_core.store import TrainingStore

EXIT_NOT_FOUND, EXIT_INVALID, EXIT_UNAVAILABLE, EXIT_TIMEOUT = 3, 4, 5, 9


def address(api: ApiServer) -> str:
    return f"127.0.0.1:{api.port}"


async def test_every_example_spec_is_accepted(api: ApiServer) -> None:
    for example in sorted(EXAMPLES.iterdir()):
        run = await tcctl_async(address(api), "create", "-f", str(example), "-o", "name")
        assert run.code == 0, run.err
        assert len(run.out.strip()) == 20


async def test_a_bad_spec_names_the_field_and_exits_4(api: ApiServer, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text((EXAMPLES / "lora.yaml").read_text().replace("0.0002", "7"))
    run = await tcctl_async(address(api), "create", "-f", str(spec))
    assert run.code == EXIT_INVALID
    assert "spec.parameters.learning_rate" in run.err
    assert len(run.err.strip().splitlines()) == 1


async def test_a_spec_with_an_unknown_field_is_refused(api: ApiServer, tmp_path: Path) -> None:
    spec = tmp_path / "typo.yaml"
    spec.write_text("model_name: x\nouput_path: /mnt/out\n")
    run = await tcctl_async(address(api), "create", "-f", str(spec))
    assert run.code == EXIT_INVALID
    assert "spec.ouput_path: is not a field of TrainingSpec; did you mean output_path?" in run.err


async def test_a_spec_names_every_problem_at_once_and_submits_nothing(
    api: ApiServer, trainings: pb_grpc.TrainingServiceAsyncStub, tmp_path: Path
) -> None:
    spec = tmp_path / "several.yaml"
    lora = (EXAMPLES / "lora.yaml").read_text()
    spec.write_text(
        lora.replace("output_path:", "ouput_path:")
        .replace("num_train_epochs: 3", "num_train_epochs: three")
        .replace("gpus: 1", "gpus: one")
        .replace("team: nlp", "team: nlp\n  gpu: yes")
    )
    run = await tcctl_async(address(api), "create", "-f", str(spec))
    assert run.code == EXIT_INVALID
    assert run.out == ""
    [line] = run.err.strip().splitlines()
    for problem in (
        "spec.ouput_path: is not a field of TrainingSpec; did you mean output_path?",
        "spec.parameters.num_train_epochs: must be a number (YAML read 'three', a str)",
        "spec.resources.gpus: must be a whole number (YAML read 'one', a str)",
        "spec.labels['gpu']: must be text: quote it (YAML read True, a bool)",
    ):
        assert problem in line
    listed = await trainings.ListTrainings(pb.ListTrainingsRequest(), timeout=5)
    assert list(listed.trainings) == []


async def test_get_json_matches_the_api(
    api: ApiServer, trainings: pb_grpc.TrainingServiceAsyncStub
) -> None:
    created = await tcctl_async(
        address(api), "create", "-f", str(EXAMPLES / "lora.yaml"), "-o", "name"
    )
    training_id = created.out.strip()
    run = await tcctl_async(address(api), "get", training_id, "-o", "json")
    assert run.code == 0
    shown = json.loads(run.out)
    got = (await trainings.GetTraining(pb.GetTrainingRequest(id=training_id))).training
    assert shown["id"] == got.id
    assert shown["phase"] == "PHASE_PENDING"
    assert shown["spec"]["model_name"] == got.spec.model_name
    assert shown["spec"]["labels"] == dict(got.spec.labels)


async def test_list_filters_and_pages_newest_first(api: ApiServer) -> None:
    ids = []
    for i in range(5):
        owner = "ada" if i % 2 == 0 else "grace"
        run = await tcctl_async(
            address(api), "create", "-f", str(EXAMPLES / "lora.yaml"), "--label", f"batch=b{i % 2}",
            "-o", "name", user=owner,
        )  # fmt: skip
        ids.append(run.out.strip())
    mine = await tcctl_async(address(api), "list", "--owner", "ada", "-o", "name")
    assert mine.out.split() == [ids[4], ids[2], ids[0]]
    labelled = await tcctl_async(address(api), "list", "--label", "batch=b1", "-o", "name")
    assert labelled.out.split() == [ids[3], ids[1]]

    first = await tcctl_async(address(api), "list", "--page-size", "2", "-o", "name")
    assert first.out.split() == [ids[4], ids[3]]
    token = first.err.split("--page-token ")[1].strip()
    second = await tcctl_async(
        address(api), "list", "--page-size", "2", "--page-token", token, "-o", "name"
    )
    assert second.out.split() == [ids[2], ids[1]]

    table = await tcctl_async(address(api), "list", "--phase", "pending")
    assert table.out.splitlines()[0].split()[:3] == ["ID", "MODEL", "PHASE"]
    assert len(table.out.splitlines()) == 6


async def test_cancel_and_not_found(api: ApiServer) -> None:
    created = await tcctl_async(
        address(api), "create", "-f", str(EXAMPLES / "lora.yaml"), "-o", "name"
    )
    training_id = created.out.strip()
    run = await tcctl_async(address(api), "cancel", training_id)
    assert run.code == 0
    assert "cancel requested" in run.out
    missing = await tcctl_async(address(api), "get", "0" * 20)
    assert missing.code == EXIT_NOT_FOUND
    assert missing.err.startswith("tcctl: not found")


async def test_cancelling_several_cancels_each_it_can_and_names_the_others(
    api: ApiServer, store: TrainingStore
) -> None:
    first, _ = await store.create(lora_spec(), owner="anonymous")
    second, _ = await store.create(lora_spec(), owner="anonymous")
    missing = "0" * 20
    run = await tcctl_async(address(api), "cancel", first.id, missing, second.id)
    assert run.code == EXIT_NOT_FOUND, run.err
    assert run.out.splitlines() == [f"{first.id} cancel requested", f"{second.id} cancel requested"]
    assert run.err.startswith(f"tcctl: {missing}: not found"), run.err
    assert (await store.get(first.id)).cancel_requested
    assert (await store.get(second.id)).cancel_requested


async def test_an_unreachable_api_exits_5() -> None:
    run = await tcctl_async("127.0.0.1:1", "--timeout", "1", "list")
    assert run.code == EXIT_UNAVAILABLE
    assert "unavailable" in run.err


async def test_get_shows_one_training_whole_and_a_cancel_on_its_way(
    api: ApiServer, store: TrainingStore
) -> None:
    created = await tcctl_async(
        address(api), "create", "-f", str(EXAMPLES / "lora.yaml"), "-o", "name"
    )
    training_id = created.out.strip()
    why = "exit code 1: torch.cuda.OutOfMemoryError: CUDA out of memory. " + "x" * 200
    await store.write_status(training_id, StatusUpdate(1, Phase.RUNNING, "Running", why))
    await tcctl_async(address(api), "cancel", training_id)

    shown = await tcctl_async(address(api), "get", training_id)
    assert shown.code == 0, shown.err
    fields = dict(line.split(":", 1) for line in shown.out.splitlines())
    assert fields["ID"].strip() == training_id
    assert fields["Phase"].strip() == "RUNNING (canceling)"
    assert fields["Message"].strip() == why  # whole, though longer than any terminal
    listed = await tcctl_async(address(api), "list")
    assert why in listed.out  # a pipe cuts nothing


async def test_a_wait_that_times_out_exits_9_and_told_the_id_first(api: ApiServer) -> None:
    run = await tcctl_async(
        address(api), "create", "-f", str(EXAMPLES / "lora.yaml"),
        "--wait", "--wait-timeout", "1", "-o", "json",
    )  # fmt: skip
    assert run.code == EXIT_TIMEOUT, run.err
    first, last = run.err.strip().splitlines()
    training_id = first.split()[1]
    assert first.startswith(f"training {training_id} created")
    assert last == f"tcctl: timed out: training {training_id} did not finish within 1s"
    assert run.out == ""


async def test_a_spec_comes_from_standard_input_and_none_at_all_is_a_usage_error(
    api: ApiServer,
) -> None:
    piped = await tcctl_async(
        address(api), "create", "-f", "-", "-o", "name", stdin=(EXAMPLES / "lora.yaml").read_text()
    )
    assert piped.code == 0, piped.err
    assert len(piped.out.strip()) == 20
    bare = await tcctl_async(address(api), "create")
    assert bare.code == 2
    assert "give a spec file (-f FILE" in bare.err


async def test_watch_without_an_id_follows_every_training_one_line_per_event(
    api: ApiServer, store: TrainingStore
) -> None:
    watching = asyncio.create_task(tcctl_async(address(api), "watch", "--wait-timeout", "4"))
    deadline = time.monotonic() + 10
    while not metrics.registry.get_sample_value(
        "trainconductor_api_active_watches", {"grpc_method": "WatchTrainings"}
    ):
        assert time.monotonic() < deadline, "tcctl's watch never opened"
        await asyncio.sleep(0.05)
    first, _ = await store.create(lora_spec(), owner="anonymous")
    second, _ = await store.create(lora_spec(), owner="anonymous")
    await store.write_status(
        first.id, StatusUpdate(1, Phase.QUEUED, "JobCreated", "the Job was created")
    )

    run = await watching
    assert run.code == EXIT_TIMEOUT, run.err
    assert run.err.strip() == "tcctl: timed out: watched all trainings for 4s"
    lines = [line.split(None, 4) for line in run.out.splitlines()]
    assert [line[1:4] for line in lines] == [
        [first.id, "PENDING", "Submitted"],
        [second.id, "PENDING", "Submitted"],
        [first.id, "QUEUED", "JobCreated"],
    ], run.out
    assert lines[2][4] == "the Job was created"


async def test_watch_with_an_id_takes_no_owner(api: ApiServer) -> None:
    run = await tcctl_async(address(api), "watch", "0" * 20, "--owner", "ada")
    assert run.code == 2, run.err
    assert "--owner is for watching all trainings" in run.err
