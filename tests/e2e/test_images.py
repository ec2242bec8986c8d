"""The two images, the Dockerfile's targets, built and run as they ship.

hack/images.sh builds them with podman on a Debian base it makes with
debootstrap (the layers are cached: a second run reuses them). Each image's
entrypoint then runs with `buildah run`, as the image's user, on this
machine's network: the API against a real Redis answers gRPC health and
drains on SIGTERM; the controller, given a kubeconfig of the control plane
mounted read-only, answers /readyz and takes the Lease. Without podman,
buildah, debootstrap or root they fail, naming what is missing (`make deps`
installs the tools).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kubernetes import client

from devstack.cluster import ROOT
from devstack.orphans import die_with_parent
from devstack.ports import free_port
from devstack.processes import wait_http_ok
from devstack.redis_server import RedisServer
from devstack.stack import KWOK_TOLERATION, Cluster
from devstack.waiting import wait_for
from tests.support.chart import api_prestop, render

IMAGES_SH = ROOT / "hack" / "images.sh"
DOCKERFILE = ROOT / "Dockerfile"
TAG = "dev"
# The API without the Kubernetes client: no extra (API_EXTRAS empty).
TAG_WITHOUT_CLIENT = "dev-without-kubernetes-client"
TOOLS = ("podman", "buildah", "debootstrap")
KUBECONFIG_IN_IMAGE = "/etc/train-conductor/kubeconfig"
# What hack/images.sh labels its images with, and prunes dangling ones by.
PROJECT_LABEL = ("dev.trainconductor.project", "train-conductor")
# The images are the base (Debian with python3, about 140 MB) and the
# service's virtualenv; the Kubernetes client is most of the latter.
MAX_MEGABYTES = 400
MAX_MEGABYTES_WITHOUT_CLIENT = 300
# What a process of the image reports about itself.
PROBE = """
import importlib.util, json, os, shutil, sys
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "python": sys.version.split()[0],
    "kubernetes": importlib.util.find_spec("kubernetes") is not None,
    "compilers": [c for c in ("cc", "gcc", "g++", "make") if shutil.which(c)],
    "pip": importlib.util.find_spec("pip") is not None,
}))
"""


def dockerfile_arg(name: str) -> str:
    found = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert found, f"the Dockerfile declares no ARG {name}=..."
    return found[1]


# building


@dataclass(frozen=True)
class Images:
    api: str
    controller: str
    api_without_client: str


def missing_prerequisites() -> list[str]:
    missing = [f"{tool} (not on PATH)" for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (debootstrap and podman's storage)")
    return missing


def build(*args: str, log: Path) -> float:
    """Runs hack/images.sh; returns how long it took."""
    started = time.monotonic()
    with log.open("ab") as out:
        result = subprocess.run(
            [str(IMAGES_SH), *args], stdout=out, stderr=subprocess.STDOUT, timeout=3600
        )
    if result.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()
        # The script's own lines, and the errors of the build above them.
        said = [
            line[:300] for line in lines if re.match(r"\[images\] \S|ERROR|Error|.*lacks", line)
        ]
        pytest.fail(
            f"hack/images.sh {' '.join(args)} failed (whole log: {log}):\n" + "\n".join(said),
            pytrace=False,
        )
    return time.monotonic() - started


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    missing = missing_prerequisites()
    if missing:
        pytest.fail(
            "the image tests build with podman and run with buildah; missing: "
            + ", ".join(missing)
            + ". `make deps` installs podman, buildah and debootstrap (Debian packages).",
            pytrace=False,
        )
    log = tmp_path_factory.mktemp("images") / "images.log"
    seconds = build("--tag", TAG, log=log)
    seconds += build("--tag", TAG_WITHOUT_CLIENT, "--build-arg", "API_EXTRAS=", "api", log=log)
    print(f"images built (or found up to date) in {seconds:.0f}s")
    return Images(
        api=f"train-conductor-api:{TAG}",
        controller=f"train-conductor-controller:{TAG}",
        api_without_client=f"train-conductor-api:{TAG_WITHOUT_CLIENT}",
    )


def inspect(image: str) -> dict[str, Any]:
    result = subprocess.run(
        ["podman", "image", "inspect", image], capture_output=True, text=True, check=True
    )
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found[0]


# running


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def ids_of(pid: int) -> tuple[int, int]:
    """The effective UID and GID of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    uid = re.search(r"^Uid:\s+\d+\s+(\d+)", status, re.MULTILINE)
    gid = re.search(r"^Gid:\s+\d+\s+(\d+)", status, re.MULTILINE)
    assert uid, status
    assert gid, status
    return int(uid[1]), int(gid[1])


class Container:
    """A working container of an image (`buildah from`) whose commands run
    with `buildah run`: chroot isolation, the host's network, the image's
    user and environment."""

    def __init__(self, image: str, log_dir: Path) -> None:
        self.image = image
        self.name = f"tc-e2e-{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0  # of the command, inside the container
        subprocess.run(
            ["buildah", "from", "--pull-never", "--quiet", "--name", self.name, image],
            check=True,
            capture_output=True,
        )

    def _command(
        self, command: list[str], env: dict[str, str], volumes: dict[Path, str]
    ) -> list[str]:
        args = ["buildah", "run", "--isolation=chroot", "--network", "host"]
        for name, value in env.items():
            args += ["--env", f"{name}={value}"]
        for source, target in volumes.items():
            args += ["--volume", f"{source}:{target}:ro"]
        return [*args, self.name, "--", *command]

    def run(self, command: list[str]) -> str:
        result = subprocess.run(
            self._command(command, {}, {}), capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command} in {self.image}:\n{result.stderr}"
        return result.stdout

    def start(
        self,
        command: list[str],
        env: dict[str, str],
        volumes: dict[Path, str] | None = None,
    ) -> None:
        """Starts `command` and waits until its process is found."""
        self.process = subprocess.Popen(
            die_with_parent(self._command(command, env, volumes or {})),
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        process = self.process

        def found() -> int:
            for pid in descendants(process.pid):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                # Not buildah's own helpers, which carry the command as arguments.
                if command[0].encode() in argv and not argv[0].startswith(b"buildah"):
                    return pid
            assert process.poll() is None, f"{command} exited:\n{self.log_tail()}"
            return 0

        self.pid = wait_for(f"the process of {command}", found, timeout=30)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM to the command, as a container runtime sends it; its exit code."""
        assert self.process is not None
        os.kill(self.pid, signal.SIGTERM)
        return self.process.wait(timeout)

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for pid in [self.pid, *descendants(self.process.pid)]:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(30)
        subprocess.run(["buildah", "rm", self.name], capture_output=True, check=False)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_messages(self) -> list[str]:
        messages = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                messages.append(str(json.loads(line).get("message")))
            except (ValueError, AttributeError):
                continue
        return messages


@contextmanager
def container(image: str, log_dir: Path) -> Iterator[Container]:
    running = Container(image, log_dir)
    try:
        yield running
    finally:
        running.remove()


def probe(image: str, log_dir: Path) -> dict[str, Any]:
    with container(image, log_dir) as c:
        found: dict[str, Any] = json.loads(c.run(["/opt/venv/bin/python", "-c", PROBE]))
        return found


@pytest.fixture(scope="module")
def redis_of_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own: the services use its default key prefix."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def self_contained_kubeconfig(kubeconfig: Path, into: Path) -> Path:
    """The current context of `kubeconfig`, with the files it names (CA,
    client certificate and key) inlined: one file to mount. Readable by the
    images' user only."""
    config = yaml.safe_load(kubeconfig.read_text())
    context_name = config["current-context"]
    context = next(c for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u for u in config["users"] if u["name"] == context["context"]["user"])
    for section, key in (
        (cluster["cluster"], "certificate-authority"),
        (user["user"], "client-certificate"),
        (user["user"], "client-key"),
    ):
        if key in section:
            path = kubeconfig.parent / section.pop(key)
            section[f"{key}-data"] = base64.b64encode(path.read_bytes()).decode()
    flat = {
        **config,
        "contexts": [context],
        "clusters": [cluster],
        "users": [user],
        "current-context": context_name,
    }
    into.write_text(yaml.safe_dump(flat))
    uid = int(dockerfile_arg("UID"))
    gid = int(dockerfile_arg("GID"))
    os.chown(into, uid, gid)
    into.chmod(0o600)
    return into


# the images as built


@pytest.mark.parametrize("component", ["api", "controller"])
def test_an_image_runs_as_the_dockerfiles_non_root_user(
    images: Images, component: str, tmp_path: Path
) -> None:
    image = getattr(images, component)
    uid, gid = dockerfile_arg("UID"), dockerfile_arg("GID")
    assert int(uid) != 0
    config = inspect(image)["Config"]
    assert config["User"] == f"{uid}:{gid}"
    assert config["Entrypoint"] == [f"/opt/venv/bin/trainconductor-{component}"]
    assert config.get("StopSignal") == "SIGTERM"
    found = probe(image, tmp_path)
    assert (found["uid"], found["gid"]) == (int(uid), int(gid))
    assert found["python"].startswith("3.11.")
    assert found["compilers"] == [], f"{image} carries {found['compilers']}"
    assert not found["pip"], f"{image} carries pip in its virtualenv"


def test_the_api_carries_the_kubernetes_client_only_when_built_with_it(
    images: Images, tmp_path: Path
) -> None:
    # Both extras use the client: token review and reading pods' logs.
    assert set(dockerfile_arg("API_EXTRAS").split(",")) == {"token-review", "pod-logs"}
    assert probe(images.api, tmp_path)["kubernetes"]
    assert not probe(images.api_without_client, tmp_path)["kubernetes"]
    assert probe(images.controller, tmp_path)["kubernetes"]


def test_the_images_are_small(images: Images) -> None:
    sizes = {image: inspect(image)["Size"] / 1e6 for image in vars(images).values()}
    print("image sizes: " + ", ".join(f"{i} {mb:.0f} MB" for i, mb in sizes.items()))
    limits = {images.api_without_client: MAX_MEGABYTES_WITHOUT_CLIENT}
    for image, megabytes in sizes.items():
        limit = limits.get(image, MAX_MEGABYTES)
        assert megabytes < limit, f"{image} is {megabytes:.0f} MB, more than {limit} MB"
    assert sizes[images.api_without_client] < sizes[images.api]


def test_a_build_leaves_no_dangling_image_of_the_project_and_keeps_its_cache(
    images: Images, tmp_path: Path
) -> None:
    name, value = PROJECT_LABEL
    for image in vars(images).values():
        assert inspect(image)["Config"]["Labels"].get(name) == value, image
    before = inspect(images.api)["Id"]
    build("--tag", TAG, "api", log=tmp_path / "rebuild.log")
    # Every step came from the layers the pruning kept: the very same image.
    assert inspect(images.api)["Id"] == before
    filters = ["--filter", "dangling=true", "--filter", f"label={name}={value}"]
    dangling = subprocess.run(
        ["podman", "images", "--quiet", *filters],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert dangling == []


# the images at work


def health(channel: grpc.Channel, service: str = "") -> int:
    stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs list no methods
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    except grpc.RpcError:
        return -1
    status: int = response.status
    return status


def test_the_api_image_runs_the_charts_prestop_hook(images: Images, tmp_path: Path) -> None:
    command = api_prestop(render("--set", "api.preStopSleepSeconds=1"))
    assert command is not None, "the chart renders no preStop hook"
    with container(images.api, tmp_path) as api:
        started = time.monotonic()
        api.run(command)
        assert time.monotonic() - started >= 1


@pytest.mark.parametrize("variant", ["api", "api_without_client"])
def test_the_api_image_serves_health_and_drains_on_sigterm(
    images: Images, variant: str, redis_of_images: RedisServer, tmp_path: Path
) -> None:
    image = getattr(images, variant)
    grpc_port, http_port = free_port(), free_port()
    env = {
        "TC_REDIS_URL": redis_of_images.url,
        "TC_GRPC_HOST": "127.0.0.1",
        "TC_GRPC_PORT": str(grpc_port),
        "TC_HTTP_PORT": str(http_port),
        "TC_DRAIN_SECONDS": "1",
    }
    serving = health_pb2.HealthCheckResponse.SERVING
    with container(image, tmp_path) as api:
        api.start(inspect(image)["Config"]["Entrypoint"], env)
        assert ids_of(api.pid) == (int(dockerfile_arg("UID")),) * 2
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            wait_for(
                "the API in its image to report SERVING",
                lambda: health(channel) == serving,
                timeout=60,
                describe=api.log_tail,
            )
            assert health(channel, "trainconductor.v1.TrainingService") == serving
        wait_http_ok(f"http://127.0.0.1:{http_port}/metrics", timeout=10)
        code = api.terminate()
        assert code == 0, f"exit code {code} after SIGTERM:\n{api.log_tail()}"
        messages = api.log_messages()
        assert "draining" in messages, api.log_tail()
        assert messages[-1] == "stopped", api.log_tail()


def lease_holder(kube: client.ApiClient, namespace: str) -> str | None:
    try:
        lease = client.CoordinationV1Api(kube).read_namespaced_lease(
            "train-conductor-controller", namespace
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    holder: str | None = lease.spec.holder_identity
    return holder


def test_the_controller_image_is_ready_and_leads_against_the_control_plane(
    images: Images,
    cluster: Cluster,
    kube: client.ApiClient,
    namespace: str,
    redis_of_images: RedisServer,
    tmp_path: Path,
) -> None:
    kubeconfig = self_contained_kubeconfig(cluster.kubeconfig, tmp_path / "kubeconfig")
    http_port = free_port()
    identity = "controller-image"
    env = {
        "TC_REDIS_URL": redis_of_images.url,
        "TC_KUBECONFIG": KUBECONFIG_IN_IMAGE,
        "TC_NAMESPACE": namespace,
        "TC_LEASE_NAMESPACE": namespace,
        "TC_IDENTITY": identity,
        "TC_HTTP_PORT": str(http_port),
        "TC_IMAGE": "example.com/trainer:1",
        "TC_TOLERATIONS": json.dumps(KWOK_TOLERATION),
        "TC_LEASE_DURATION_SECONDS": "4",
        "TC_RENEW_DEADLINE_SECONDS": "3",
        "TC_RETRY_PERIOD_SECONDS": "1",
    }
    with container(images.controller, tmp_path) as controller:
        controller.start(
            inspect(images.controller)["Config"]["Entrypoint"],
            env,
            {kubeconfig: KUBECONFIG_IN_IMAGE},
        )
        assert ids_of(controller.pid) == (int(dockerfile_arg("UID")),) * 2
        try:
            wait_http_ok(f"http://127.0.0.1:{http_port}/readyz", timeout=60)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n{controller.log_tail()}") from None
        wait_for(
            "the controller in its image to hold the Lease",
            lambda: lease_holder(kube, namespace) == identity,
            timeout=30,
            describe=controller.log_tail,
        )
        wait_http_ok(f"http://127.0.0.1:{http_port}/readyz", timeout=30)
        code = controller.terminate()
        assert code == 0, f"exit code {code} after SIGTERM:\n{controller.log_tail()}"
