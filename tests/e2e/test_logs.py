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

from devstack.pod_logs import PodLog, serve_pod_log
from devstack.stack import Cluster, Stack, running_stack, wait_for
from tests.support.security import StaticUser, static_user, write_static_tokens
from tests.support.tcctl import EXAMPLES, env, tcctl_path
from trainconductor_client import Client

EXIT_NOT_FOUND = 3
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
