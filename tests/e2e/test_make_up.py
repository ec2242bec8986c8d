"""`make up` as a newcomer runs it: in a terminal whose input stays open,
from a tools cache where a cheap tool is still to be built. It must never
wait on that input, must show a submitted training in Prometheus and its
trace in Jaeger, must have Kueue serving the example queues, and however it
is stopped, must leave no process behind.

Each run has a run directory of its own (TC_RUN_DIR), so it starts its own
control plane beside the one the other tests use; every process it starts
carries that directory in its environment or command line, which is how
leftovers are found."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest
from kubernetes import client, config

from devstack.cluster import CACHE, ROOT
from devstack.ports import free_port
from devstack.up import CREATE_SPAN
from devstack.waiting import wait_for
from tests.support.tcctl import EXAMPLES, tcctl

# The tool left out of the seeded cache, so that the first run builds it.
CHEAP_TOOL = "kwok"
BANNER = "Train Conductor is up."
START_TIMEOUT = 900  # a cold build of the cheap tool plus a control plane


@dataclass
class UpRun:
    """One `make up` in a pseudo-terminal."""

    child: pexpect.spawn
    run_dir: Path
    ports: dict[str, int]
    started_seconds: float
    banner: str = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports['TC_GRPC_PORT']}"

    @property
    def output(self) -> str:
        """What it printed since the last match, without colours."""
        before = self.child.before
        return re.sub(r"\x1b\[[0-9;]*m", "", before if isinstance(before, str) else "")


@pytest.fixture(scope="module")
def tools_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with the expensive tools and the virtualenv of the real one,
    and without `CHEAP_TOOL`: the first `make up` builds it."""
    cache = tmp_path_factory.mktemp("cache")
    (cache / "tools").mkdir()
    for built in (CACHE / "tools").iterdir():
        if not built.name.startswith(f"{CHEAP_TOOL}-") and ".partial." not in built.name:
            (cache / "tools" / built.name).symlink_to(built)
    (cache / "venv").symlink_to(CACHE / "venv")
    return cache


def leftovers(run_dir: Path) -> list[str]:
    """The processes whose command line or environment names `run_dir`."""
    marker = str(run_dir).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = proc.joinpath("cmdline").read_bytes()
            environ = proc.joinpath("environ").read_bytes()
        except OSError:
            continue  # gone, or a zombie
        if marker in cmdline or marker in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command}")
    return found


@contextmanager
def started(
    tools_cache: Path, tmp_path: Path, command: str = "make up", **extra: str
) -> Iterator[UpRun]:
    """`command` run in a pseudo-terminal until its banner; whatever the test
    does, nothing of it outlives the block."""
    run_dir = tmp_path / "run"
    ports = {
        name: free_port()
        for name in (
            "TC_GRPC_PORT",
            "TC_API_HTTP_PORT",
            "TC_CONTROLLER_HTTP_PORT",
            "TC_REDIS_PORT",
            "TC_PROMETHEUS_PORT",
            "TC_JAEGER_PORT",
            "TC_OTLP_PORT",
        )
    }
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "TC_KUBECONFIG")},
        "TC_CACHE": str(tools_cache),
        "TC_RUN_DIR": str(run_dir),
        "TERM": "xterm",
        **{name: str(port) for name, port in ports.items()},
        **extra,
    }
    began = time.monotonic()
    # The terminal's input stays open for the whole run: anything that reads
    # it waits for ever, as it would for a person at a terminal.
    child = pexpect.spawn(
        "bash", ["-c", command], cwd=str(ROOT), env=env, encoding="utf-8", timeout=None
    )
    child.logfile_read = (tmp_path / "make-up.out").open("w")
    try:
        child.expect_exact(BANNER, timeout=START_TIMEOUT)
    except pexpect.TIMEOUT:
        child.terminate(force=True)
        tail = (tmp_path / "make-up.out").read_text()[-3000:]
        raise AssertionError(
            f"`{command}` printed no banner in {START_TIMEOUT}s (waiting on its input?):\n{tail}"
        ) from None
    except pexpect.EOF:
        tail = (tmp_path / "make-up.out").read_text()[-3000:]
        raise AssertionError(f"`{command}` ended before its banner:\n{tail}") from None
    run = UpRun(child, run_dir, ports, time.monotonic() - began)
    print(f"`{command}`: banner after {run.started_seconds:.1f}s")
    try:
        child.expect_exact("Ctrl-C stops everything.", timeout=30)
        run.banner = run.output
        yield run
    finally:
        if child.isalive():
            os.killpg(child.pid, signal.SIGKILL)
        # A failed test's leftovers must not outlive it.
        for line in leftovers(run_dir):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)


def ended(run: UpRun, timeout: float = 120) -> None:
    """Waits for the terminal's program to end, then for nothing of the
    stack to be left (what it stopped may take a moment to exit)."""
    run.child.expect(pexpect.EOF, timeout=timeout)
    wait_for(
        "every process of the stack to exit",
        lambda: not leftovers(run.run_dir),
        timeout=60,
        describe=lambda: "\n".join(leftovers(run.run_dir)),
    )


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def prometheus_phases(run: UpRun) -> dict[str, float]:
    query = urllib.parse.urlencode({"query": "sum by (phase) (trainconductor_trainings)"})
    port = run.ports["TC_PROMETHEUS_PORT"]
    body = get_json(f"http://127.0.0.1:{port}/api/v1/query?{query}")
    return {r["metric"].get("phase", ""): float(r["value"][1]) for r in body["data"]["result"]}


def trace_services(run: UpRun, training_id: str) -> set[str]:
    """The services in the trace that reconciled the training: the one its
    CreateTraining started, continued by the controller."""
    port = run.ports["TC_JAEGER_PORT"]
    query = urllib.parse.urlencode(
        {
            "service": "trainconductor-controller",
            "tags": json.dumps({"trainconductor.training_id": training_id}),
            "limit": "5",
        }
    )
    services: set[str] = set()
    for trace in get_json(f"http://127.0.0.1:{port}/api/traces?{query}")["data"]:
        services |= {p["serviceName"] for p in trace["processes"].values()}
    return services


def test_make_up_in_a_terminal_shows_a_training_in_prometheus_and_jaeger_and_stops_on_ctrl_c(
    tools_cache: Path, tmp_path: Path
) -> None:
    with started(tools_cache, tmp_path) as run:
        assert (tools_cache / "bin" / CHEAP_TOOL).exists(), "make up did not build the cheap tool"
        assert "queues          team-a, team-b (Kueue)" in run.banner, run.banner
        created = tcctl(
            run.address, "create", "-f", str(EXAMPLES / "lora.yaml"), "--wait", "-o", "json"
        )
        assert created.code == 0, created.err
        training = json.loads(created.out)
        training_id = training["id"]
        assert training["phase"] == "PHASE_COMPLETED"

        phases = wait_for(
            "Prometheus to count the completed training",
            lambda: (p := prometheus_phases(run)).get("COMPLETED", 0) >= 1 and p,
            timeout=60,
            describe=lambda: str(prometheus_phases(run)),
        )
        assert phases["COMPLETED"] >= 1
        services = wait_for(
            "Jaeger to hold the training's trace from the API to the controller",
            lambda: (
                {"trainconductor-api", "trainconductor-controller"}
                <= (s := trace_services(run, training_id))
                and s
            ),
            timeout=60,
            describe=lambda: str(trace_services(run, training_id)),
        )
        assert "trainconductor-api" in services
        # The banner's Jaeger link searches for an operation the API records.
        port = run.ports["TC_JAEGER_PORT"]
        operations = get_json(
            f"http://127.0.0.1:{port}/api/services/trainconductor-api/operations"
        )["data"]
        assert CREATE_SPAN in operations, operations

        queues = kueue_cluster_queues(run)
        assert {"team-a", "team-b"} <= queues.keys(), queues
        assert queues["team-a"]["spec"]["cohortName"] == "research"
        # The banner's queued training: taken, admitted by Kueue and run.
        assert "--queue team-a" in run.banner, run.banner
        queued = tcctl(
            run.address, "create", "-f", str(EXAMPLES / "lora.yaml"), "--queue", "team-a",
            "--priority", "high", "--wait", "-o", "json",
        )  # fmt: skip
        assert queued.code == 0, queued.err
        assert json.loads(queued.out)["phase"] == "PHASE_COMPLETED"
        assert json.loads(queued.out)["queue"] == "team-a"

        run.child.sendintr()
        ended(run)
        assert "[up] stopped" in run.output


def kueue_cluster_queues(run: UpRun) -> dict[str, Any]:
    """The ClusterQueues of the run's cluster, by name."""
    kube = config.new_client_from_config(config_file=str(run.run_dir / "kubeconfig"))
    found = client.CustomObjectsApi(kube).list_cluster_custom_object(
        "kueue.x-k8s.io", "v1beta2", "clusterqueues"
    )
    return {q["metadata"]["name"]: q for q in found["items"]}


@pytest.mark.parametrize("how", ["sigterm-to-the-group", "sighup", "ctrl-c-into-a-closed-pipe"])
def test_make_up_leaves_nothing_behind_however_it_is_stopped(
    tools_cache: Path, tmp_path: Path, how: str
) -> None:
    command = "make up"
    if how == "ctrl-c-into-a-closed-pipe":
        # Ctrl-C stops tee too: the stop's own log lines meet a closed pipe.
        command = f"make up 2>&1 | tee {tmp_path / 'up.log'}"
    with started(tools_cache, tmp_path, command, TC_UP_MINIMAL="1") as run:
        if how == "sigterm-to-the-group":
            # What `timeout`, a process supervisor or a closing terminal sends:
            # make passes it on to its child, a second signal to the stack.
            os.killpg(run.child.pid, signal.SIGTERM)
        elif how == "sighup":
            os.killpg(run.child.pid, signal.SIGHUP)
        else:
            run.child.sendintr()
        ended(run)


def test_a_taken_port_is_named_with_the_fix_and_nothing_is_left(
    tools_cache: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    with socket_on() as port:
        result = subprocess.run(
            ["make", "up"],
            cwd=ROOT,
            env={
                **os.environ,
                "TC_CACHE": str(tools_cache),
                "TC_RUN_DIR": str(run_dir),
                "TC_GRPC_PORT": str(port),
                "TC_UP_MINIMAL": "1",
            },
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode != 0
    assert f"port {port} (the API's gRPC) is taken" in result.stderr
    assert "set TC_GRPC_PORT" in result.stderr
    assert not leftovers(run_dir)


class socket_on:  # noqa: N801 - used as a context manager, like a function
    """A loopback port held open by this test."""

    def __enter__(self) -> int:
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", free_port()))
        self.socket.listen()
        port: int = self.socket.getsockname()[1]
        return port

    def __exit__(self, *_: object) -> None:
        self.socket.close()


def test_the_tools_script_never_reads_the_terminal(tools_cache: Path) -> None:
    """Every tool cached: the script only computes keys and links, in seconds."""
    child = pexpect.spawn(
        str(ROOT / "hack" / "tools" / "install.sh"),
        env={**os.environ, "TC_CACHE": str(tools_cache)},
        encoding="utf-8",
    )
    child.expect_exact("tools ready", timeout=600)
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0
    assert shutil.which("kubectl", path=str(tools_cache / "bin"))
