"""`tcctl` end to end: submitted, followed live in a terminal, completed."""

from __future__ import annotations

import io

import pexpect

from devstack.stack import Stack
from tests.support.tcctl import EXAMPLES, env, tcctl, tcctl_path

EXIT_FAILED, EXIT_CANCELED = 7, 8


def address(stack: Stack) -> str:
    return f"127.0.0.1:{stack.api_port}"


def test_create_wait_follows_the_training_to_completed(stack: Stack) -> None:
    run = tcctl(address(stack), "create", "-f", str(EXAMPLES / "lora.yaml"), "--wait")
    assert run.code == 0, run.err
    phases = [line.split()[1] for line in run.out.splitlines()[1:-1]]
    assert phases[0] == "PENDING"
    assert phases.index("QUEUED") < phases.index("RUNNING") < phases.index("COMPLETED")
    assert run.out.splitlines()[-1].split()[1] == "COMPLETED:"


def test_the_live_watch_shows_each_phase_as_it_happens(stack: Stack) -> None:
    created = tcctl(
        address(stack), "create", "-f", str(EXAMPLES / "prompt-tuning.yaml"), "-o", "name"
    )
    training_id = created.out.strip()
    screen = io.StringIO()
    child = pexpect.spawn(
        tcctl_path(), ["watch", training_id], env=env(address(stack)), encoding="utf-8",
        dimensions=(24, 120), timeout=60,
    )  # fmt: skip
    child.logfile_read = screen
    for phase in ("QUEUED", "RUNNING", "COMPLETED"):
        child.expect(phase)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # A terminal gets colours and a spinner with the elapsed time.
    assert "\x1b[3" in screen.getvalue()
    assert any(spin in screen.getvalue() for spin in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def test_wait_on_a_failed_training_exits_7(stack: Stack) -> None:
    created = tcctl(address(stack), "create", "-f", str(EXAMPLES / "lora.yaml"), "-o", "name")
    training_id = created.out.strip()
    stack.fail_pod(f"train-{training_id}", 1, "Error", "loss is NaN")
    run = tcctl(address(stack), "watch", training_id)
    assert run.code == EXIT_FAILED
    assert "loss is NaN" in run.out


def test_wait_on_a_canceled_training_exits_8(stack: Stack) -> None:
    created = tcctl(
        address(stack), "create", "-f", str(EXAMPLES / "gpu-deadline.json"), "-o", "name"
    )
    training_id = created.out.strip()
    assert tcctl(address(stack), "cancel", training_id).code == 0
    run = tcctl(address(stack), "watch", training_id)
    assert run.code == EXIT_CANCELED
