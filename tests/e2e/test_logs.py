"""`tcctl logs` end to end: a training's log read from its pod on the real
control plane (kwok serving the pod's log file), followed as it is written,
kept when it fails, and shown to its owner only."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from devstack.pod_logs import DEFAULT_LINES, PodLog, serve_pod_log
from devstack.stack import Cluster, Stack, running_stack
from devstack.waiting import wait_for
from tests.support.security import StaticUser, static_user, write_static_tokens
from tests.support.tcctl import EXAMPLES, env, tcctl_path
from trainconductor_client import Client

EXIT_NOT_FOUND = 3
RANK = "batch.kubernetes.io/job-completion-index"
ALICE, BOB = static_user("alice"), static_user("bob")


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Callers known by their tokens, and trainings whose pods run until a
    test ends them (kwok's run-duration)."""
    if cluster.local is None:
        pytest.skip("kwok's simulated pod logs exist on the local control plane only")
    directory = tmp_path_factory.mktemp("logs")
    tokens = write_static_tokens(directory / "tokens", [ALICE, BOB])
    api_env = {"TC_AUTH_MODES": '["static-token"]', "TC_STATIC_TOKENS_FILE": str(tokens)}
    controller_env = {
        "TC_POD_ANNOTATIONS": json.dumps({"kwok.trainconductor.dev/run-duration": "1h"})
    }
    with running_stack(cluster, directory, api_env, controller_env) as running:
        yield running


def address(stack: Stack) -> str:
    return f"127.0.0.1:{stack.api_port}"


def run(stack: Stack, user: StaticUser, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tcctl_path(), *args],
        env=env(address(stack), TC_TOKEN=user.token),
        capture_output=True,
        text=True,
        timeout=60,
    )


def create(stack: Stack) -> str:
    created = run(stack, ALICE, "create", "-f", str(EXAMPLES / "lora.yaml"), "-o", "name")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def running_pod(stack: Stack, training_id: str) -> str:
    pods = wait_for(
        "the training's pod to run",
        lambda: [
            p.metadata.name
            for p in stack.pods_of(f"train-{training_id}")
            if p.status.phase == "Running"
        ],
    )
    return str(pods[0])


def give_log(stack: Stack, pod: str, path: Path, *lines: str) -> PodLog:
    """The pod's own log file, with `lines` in it, once kwok serves it."""
    log = PodLog(path)
    log.write(*lines)
    serve_pod_log(stack.kube, stack.namespace, pod, log)
    core = client.CoreV1Api(stack.kube)
    wait_for(
        "kwok to serve the pod's own log",
        lambda: core.read_namespaced_pod_log(pod, stack.namespace).splitlines() == list(lines),
    )
    return log


def end_pod(stack: Stack, pod: str) -> None:
    """The trainer exits 0 now."""
    annotations = {"kwok.trainconductor.dev/run-duration": "0s"}
    client.CoreV1Api(stack.kube).patch_namespaced_pod(
        pod, stack.namespace, {"metadata": {"annotations": annotations}}
    )


def test_follow_prints_lines_as_they_are_written_and_ends_with_the_training(
    stack: Stack, tmp_path: Path
) -> None:
    training_id = create(stack)
    pod = running_pod(stack, training_id)
    log = give_log(stack, pod, tmp_path / "trainer.log", "step 1 loss 2.10")
    child = pexpect.spawn(
        tcctl_path(), ["logs", "-f", training_id],
        env=env(address(stack), TC_TOKEN=ALICE.token), encoding="utf-8", timeout=60,
    )  # fmt: skip
    try:
        child.expect_exact("step 1 loss 2.10")
        # Written after the follow began: printed as it comes.
        log.write("step 2 loss 1.45")
        child.expect_exact("step 2 loss 1.45")
        log.write("step 3 loss 0.98", "saving the model")
        child.expect_exact("saving the model")
        assert "step 3 loss 0.98" in child.before
        end_pod(stack, pod)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    with Client(address(stack), token=ALICE.token) as alice:
        assert alice.get(training_id).phase == pb.PHASE_COMPLETED


def test_another_owners_training_has_no_log_they_can_see(stack: Stack, tmp_path: Path) -> None:
    training_id = create(stack)
    pod = running_pod(stack, training_id)
    give_log(stack, pod, tmp_path / "trainer.log", "alice's data: s3://alice/private")
    theirs = run(stack, BOB, "logs", training_id)
    assert theirs.returncode == EXIT_NOT_FOUND, theirs.stderr
    assert "not found" in theirs.stderr
    assert "alice" not in theirs.stdout
    mine = run(stack, ALICE, "logs", training_id)
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == "alice's data: s3://alice/private\n"
    beyond = run(stack, ALICE, "logs", training_id, "--rank", "1")
    assert beyond.returncode == 1
    assert "has 1 rank: 0 to 0" in beyond.stderr
    end_pod(stack, pod)


def test_a_failed_trainings_last_lines_outlive_its_job(stack: Stack, tmp_path: Path) -> None:
    training_id = create(stack)
    pod = running_pod(stack, training_id)
    lines = [f"step {n} loss {3 - n / 100:.2f}" for n in range(200)]
    give_log(stack, pod, tmp_path / "trainer.log", *lines, "ValueError: the dataset has no 'text'")
    stack.fail_pod(f"train-{training_id}", 1, "Error", "the trainer exited with code 1")
    with Client(address(stack), token=ALICE.token) as alice:
        assert alice.wait(training_id, timeout=60).phase == pb.PHASE_FAILED
    batch = client.BatchV1Api(stack.kube)
    batch.delete_namespaced_job(
        f"train-{training_id}", stack.namespace, propagation_policy="Background"
    )
    wait_for("its Job and pod to be gone", lambda: not stack.pods_of(f"train-{training_id}"))

    shown = run(stack, ALICE, "logs", training_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [*lines, "ValueError: the dataset has no 'text'"]
    assert "kept when the training finished" in shown.stderr
    tail = run(stack, ALICE, "logs", training_id, "--tail", "2")
    assert tail.stdout.splitlines() == [lines[-1], "ValueError: the dataset has no 'text'"]


def ranks_running(stack: Stack, job: str, nodes: int) -> dict[int, str]:
    """The names of the gang's pods by rank once all of them run; {} until then."""
    pods = [p for p in stack.pods_of(job) if p.status.phase == "Running"]
    by_rank = {int(p.metadata.labels[RANK]): str(p.metadata.name) for p in pods}
    return by_rank if len(by_rank) == nodes else {}


def test_follow_goes_on_to_the_next_attempt_and_each_ranks_end_is_kept(
    stack: Stack, tmp_path: Path
) -> None:
    created = run(stack, ALICE, "create", "-f", str(EXAMPLES / "lora.yaml"),
                  "--nodes", "2", "--max-retries", "1", "-o", "name")  # fmt: skip
    assert created.returncode == 0, created.stderr
    training_id = created.stdout.strip()
    first, second = f"train-{training_id}", f"train-{training_id}-a2"
    pods = wait_for("both ranks to run", lambda: ranks_running(stack, first, 2))
    give_log(stack, pods[1], tmp_path / "a1-r1.log", "rank 1 attempt 1: loss 3.00")
    child = pexpect.spawn(
        tcctl_path(), ["logs", "-f", training_id, "--rank", "1"],
        env=env(address(stack), TC_TOKEN=ALICE.token), encoding="utf-8", timeout=60,
    )  # fmt: skip
    try:
        child.expect_exact("rank 1 attempt 1: loss 3.00")
        # Rank 0 is killed: the gang restarts as attempt 2, whose rank 1 the
        # follow goes on with.
        fail = {
            "kwok.trainconductor.dev/fail": "true",
            "kwok.trainconductor.dev/exit-code": "137",
            "kwok.trainconductor.dev/reason": "OOMKilled",
        }
        client.CoreV1Api(stack.kube).patch_namespaced_pod(
            pods[0], stack.namespace, {"metadata": {"annotations": fail}}
        )
        again = wait_for("attempt 2 to run", lambda: ranks_running(stack, second, 2), timeout=90)
        log = give_log(stack, again[1], tmp_path / "a2-r1.log", "rank 1 attempt 2: loss 2.00")
        child.expect_exact(f"rank 1, attempt 2, pod {again[1]}")
        child.expect_exact("rank 1 attempt 2: loss 2.00")
        log.write("rank 1 attempt 2: done")
        child.expect_exact("rank 1 attempt 2: done")
        for pod in again.values():
            end_pod(stack, pod)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0

    # Its Job gone, each rank's end is still there: the last attempt's.
    client.BatchV1Api(stack.kube).delete_namespaced_job(
        second, stack.namespace, propagation_policy="Background"
    )
    wait_for("its pods to be gone", lambda: not stack.pods_of(second))
    kept = run(stack, ALICE, "logs", training_id, "--rank", "1")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines() == ["rank 1 attempt 2: loss 2.00", "rank 1 attempt 2: done"]
    assert f"rank 1, attempt 2, pod {again[1]}: the end of its log, kept" in kept.stderr
    rank0 = run(stack, ALICE, "logs", training_id)
    assert rank0.returncode == 0, rank0.stderr
    assert rank0.stdout.splitlines() == list(DEFAULT_LINES)  # kwok's lines for every pod
    earlier = run(stack, ALICE, "logs", training_id, "--rank", "1", "--attempt", "1")
    assert earlier.returncode == 1
    assert "only its last attempt's log is kept" in earlier.stderr
