"""Starts, reuses and stops the local control plane."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.pod_logs import write_default_pod_log

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
CACHE = Path(
    os.environ.get("TC_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "train-conductor"
)
BIN = CACHE / "bin"
# Where the local stack keeps its state, logs and kubeconfig; TC_RUN_DIR
# moves it (a second stack beside the first, as the tests of `make up` run).
RUN_DIR = Path(os.environ.get("TC_RUN_DIR") or ROOT / ".run")
KUBECONFIG = RUN_DIR / "kubeconfig"
# The log kwok serves for a pod that no Logs object names (devstack/pod_logs.py).
DEFAULT_POD_LOG = RUN_DIR / "pod-logs" / "default.log"
BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "kwokctl",
)

# Fake nodes: four with four GPUs each (a 4-node training of 4 GPUs a node
# fits; one pod asking for 8 fits none, which tests of an unschedulable
# training rely on), two without.
NODES = (
    ("kwok-gpu-0", 4),
    ("kwok-gpu-1", 4),
    ("kwok-gpu-2", 4),
    ("kwok-gpu-3", 4),
    ("kwok-cpu-0", 0),
    ("kwok-cpu-1", 0),
)


def _state(proc: Path) -> str:
    try:
        return proc.joinpath("status").read_text()
    except OSError:
        return "zombie"  # gone


def binary(name: str) -> str:
    path = BIN / name
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"{name} is missing from {BIN}: run `make tools` (hack/tools/install.sh) to build it"
        )
    return str(path)


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LocalCluster:
    """One kwok cluster per run directory (the checkout's .run/ by default)."""

    run_duration_seconds: float = 3.0

    @property
    def name(self) -> str:
        return "tc-" + hashlib.sha256(str(RUN_DIR).encode()).hexdigest()[:8]

    @property
    def kubeconfig(self) -> Path:
        return KUBECONFIG

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(RUN_DIR / "kwok")
        env["PATH"] = f"{BIN}:{env['PATH']}"
        return env

    def _kwokctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary("kwokctl"), "--name", self.name, *args],
            env=self._env(),
            text=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,  # never the terminal
            check=check,
        )

    def kubectl(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [binary("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            text=True,
            capture_output=True,
            input=input if input is not None else "",  # never the terminal
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def is_running(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        try:
            return self.kubectl("get", "--raw", "/readyz", "--request-timeout=3s").strip() == "ok"
        except RuntimeError:
            return False

    def up(self) -> bool:
        """Starts the cluster unless it already runs; returns whether it started it."""
        for name in BINARIES:
            binary(name)
        if self.is_running():
            log(f"reusing the running cluster {self.name} ({self.kubeconfig})")
            return False
        start = time.monotonic()
        self._kwokctl("delete", "cluster", check=False)
        self._kill_leftovers()
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        config = RUN_DIR / "kwok-config.yaml"
        config.write_text(self._config())
        write_default_pod_log(DEFAULT_POD_LOG)
        log(f"starting {self.name}: kube-apiserver, etcd, controller-manager, scheduler, kwok")
        result = self._kwokctl(
            "create", "cluster",
            "--runtime", "binary",
            "--config", str(config),
            "--kubeconfig", str(self.kubeconfig),
            "--kube-apiserver-binary", binary("kube-apiserver"),
            "--kube-controller-manager-binary", binary("kube-controller-manager"),
            "--kube-scheduler-binary", binary("kube-scheduler"),
            "--etcd-binary", binary("etcd"),
            "--kwok-controller-binary", binary("kwok"),
            "--disable-qps-limits",
            # Logs objects come from the cluster, so that a test can give a
            # pod a log of its own once the pod (and so its name) exists;
            # the ClusterLogs of the config serves every other pod.
            "--enable-crds", "Logs",
            # A throwaway cluster: etcd need not wait for the disk on every
            # write (Kubernetes' own integration tests run it so too).
            "--extra-args", "etcd=unsafe-no-fsync=true",
            # One of each, with nothing to restart them: without leader
            # election they ride out an API server restart instead of exiting.
            "--extra-args", "kube-controller-manager=leader-elect=false",
            "--extra-args", "kube-scheduler=leader-elect=false",
            "--wait", "120s",
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"kwokctl create cluster failed:\n{result.stderr[-4000:]}")
        self.kubectl("apply", "-f", "-", input=json.dumps(self._nodes()))
        self._wait_for_nodes()
        log(f"ready in {time.monotonic() - start:.1f}s; KUBECONFIG={self.kubeconfig}")
        return True

    def restart_apiserver(
        self, pause_seconds: float = 0.0, on_stopped: Callable[[], None] | None = None
    ) -> None:
        """Kills kube-apiserver and starts it again with the same command line,
        as a crash would (a graceful stop waits a minute for open watches);
        etcd, the controllers and kwok stay up and reconnect by themselves."""
        cluster_dir = RUN_DIR / "kwok" / "clusters" / self.name
        pid_file = cluster_dir / "pids" / "kube-apiserver.pid"
        pid = int(pid_file.read_text().strip())
        proc = Path(f"/proc/{pid}")
        argv = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        cwd = os.readlink(proc / "cwd")
        os.kill(pid, signal.SIGKILL)
        while proc.exists() and "zombie" not in _state(proc):
            time.sleep(0.05)
        if on_stopped:
            on_stopped()
        time.sleep(pause_seconds)
        log = (cluster_dir / "logs" / "kube-apiserver.log").open("ab")
        started = subprocess.Popen(
            [a.decode() for a in argv], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        pid_file.write_text(str(started.pid))
        deadline = time.monotonic() + 60
        while not self.is_running():
            if time.monotonic() > deadline:
                raise RuntimeError("kube-apiserver did not come back within a minute")
            time.sleep(0.2)

    def _kill_leftovers(self) -> None:
        """Stops processes of this cluster that a run which died left behind
        (kwokctl only knows those in its pid files): a stale controller
        manager talking to a new API server on the same port is chaos."""
        marker = str(RUN_DIR / "kwok" / "clusters" / self.name).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if marker in proc.joinpath("cmdline").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
                    log(f"stopped a leftover process {proc.name}")
            except (OSError, ProcessLookupError):
                continue

    def down(self) -> None:
        self._kwokctl("delete", "cluster", check=False)
        self._kill_leftovers()  # a restarted kube-apiserver is not kwokctl's
        self.kubeconfig.unlink(missing_ok=True)
        shutil.rmtree(RUN_DIR / "kwok", ignore_errors=True)
        log(f"stopped {self.name}")

    def logs(self, component: str) -> str:
        return self._kwokctl("logs", component, check=False).stdout

    @property
    def service_account_signing_key(self) -> Path:
        """The key kube-apiserver signs ServiceAccount tokens with (kwokctl
        makes it and passes it as --service-account-signing-key-file)."""
        return RUN_DIR / "kwok" / "clusters" / self.name / "pki" / "admin.key"

    def _config(self) -> str:
        stages = (HERE / "stages.yaml").read_text()
        stages = stages.replace("RUN_DURATION_MS", str(int(self.run_duration_seconds * 1000)))
        options = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": {"kubectlBinary": binary("kubectl")},
        }
        # Every pod has a log: a few lines of its own (the trainer's
        # start), or those of the Logs object named after it.
        logs = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "every-pod"},
            "spec": {"logs": [{"logsFile": str(DEFAULT_POD_LOG), "follow": True}]},
        }
        return "\n---\n".join((json.dumps(options), json.dumps(logs), stages))

    def _nodes(self) -> dict[str, object]:
        items = []
        for name, gpus in NODES:
            capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
            if gpus:
                capacity["nvidia.com/gpu"] = str(gpus)
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "type": "kwok",
                            "trainconductor.dev/gpu": "true" if gpus else "false",
                        },
                    },
                    "spec": {
                        "taints": [
                            {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
                        ]
                    },
                    "status": {"capacity": capacity, "allocatable": capacity},
                }
            )
        return {"apiVersion": "v1", "kind": "List", "items": items}

    def _wait_for_nodes(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.kubectl("get", "nodes", "-o", "json")
            nodes = json.loads(out)["items"]
            ready = [
                n
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) == len(NODES):
                return
            time.sleep(0.5)
        raise RuntimeError("the kwok nodes did not become Ready within a minute")
