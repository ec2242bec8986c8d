"""`make up`: Redis, a Kubernetes control plane, the API and the controller,
with a Prometheus that scrapes both (the chart's alerts loaded), a Jaeger
that receives every call's trace, and Kueue with an example setup of queues
(the ClusterQueues team-a and team-b in one cohort, a LocalQueue of each in
the controller's namespace), in the foreground until stopped.

However it is stopped (Ctrl-C, SIGTERM to its process group, SIGHUP from a
closing terminal, its output piped into a `tee` that died first), it stops
everything it started: once stopping, it ignores further signals and writes
nothing it can not write. Each process runs in a session of its own, so a
signal reaches only this program, which stops them in order.

KUBECONFIG (or TC_KUBECONFIG) uses that cluster instead of the local control
plane (and leaves Kueue out: it runs beside the local one only);
TC_UP_QUEUES=0 leaves out Kueue; TC_UP_MINIMAL=1 leaves out Prometheus,
Jaeger and Kueue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from kubernetes import client

from devstack.cluster import BIN, ROOT, RUN_DIR, LocalCluster
from devstack.jaeger import Jaeger
from devstack.kueue import Kueue
from devstack.ports import claim
from devstack.processes import Service
from devstack.prometheus import Prometheus, render_alert_rules
from devstack.queues import TEAMS, example_queues
from devstack.redis_server import RedisServer
from devstack.stack import KWOK_TOLERATION, controller_timings

# The chart's release and namespace the alert rules are rendered for; the
# scrape jobs carry the same names, so the rules select these series.
RELEASE = NAMESPACE = "local"
TCCTL = Path(sys.executable).parent / "tcctl"


class Stop(Exception):
    """The user asked to stop (a signal)."""


class StartFailed(Exception):
    """Something could not start; the message says what to do."""


@dataclass(frozen=True)
class Port:
    what: str
    variable: str
    default: int

    @property
    def number(self) -> int:
        return int(os.environ.get(self.variable) or self.default)


API = Port("the API's gRPC", "TC_GRPC_PORT", 50051)
API_HTTP = Port("the API's metrics", "TC_API_HTTP_PORT", 9464)
CONTROLLER = Port("the controller's HTTP", "TC_CONTROLLER_HTTP_PORT", 8080)
REDIS = Port("Redis", "TC_REDIS_PORT", 6379)
PROMETHEUS = Port("Prometheus", "TC_PROMETHEUS_PORT", 9090)
JAEGER = Port("Jaeger's UI", "TC_JAEGER_PORT", 16686)
OTLP = Port("Jaeger's OTLP receiver", "TC_OTLP_PORT", 4317)


class Console:
    """Writes progress to stderr, and stops writing once stderr is gone (a
    closed pipe or terminal): a stop must not die on its own log line."""

    def __init__(self) -> None:
        self.open = True

    def write(self, text: str) -> None:
        if not self.open:
            return
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except OSError:
            self.open = False
            # Python's own flush at exit would fail on it again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stderr.fileno())
            os.dup2(devnull, sys.stdout.fileno())

    def log(self, message: str) -> None:
        self.write(f"\033[1m[up]\033[0m {message}\n")


def check_ports(ports: list[Port]) -> None:
    """Each port must be free, and is kept from the ports drawn later for
    what `make up` starts besides (Kueue's, Jaeger's): one drawn equal to a
    port set here would take it before its server binds it."""
    for port in ports:
        if not claim(port.number):
            raise StartFailed(
                f"port {port.number} ({port.what}) is taken: stop what uses it "
                f"(`ss -ltnp 'sport = :{port.number}'` names it) or set {port.variable}"
            )


class LocalUp:
    """What `make up` started, to be stopped in reverse order."""

    def __init__(self, console: Console, run_dir: Path, minimal: bool, queues: bool) -> None:
        self.console = console
        self.run_dir = run_dir
        self.minimal = minimal
        self.queues = queues and not minimal
        self.stops = ExitStack()
        self.services: list[Service] = []
        self.kubeconfig = Path()
        self.local_cluster: LocalCluster | None = None
        self.prometheus: Prometheus | None = None
        self.jaeger: Jaeger | None = None
        self.kueue: Kueue | None = None  # the one started here
        self.kube: client.ApiClient | None = None
        # The namespace the controller makes Jobs in: its LocalQueues are there.
        self.namespace = os.environ.get("TC_NAMESPACE") or "default"

    def start(self) -> None:
        given = os.environ.get("TC_KUBECONFIG") or os.environ.get("KUBECONFIG")
        ports = [API, API_HTTP, CONTROLLER, REDIS]
        if not self.minimal:
            ports += [PROMETHEUS, JAEGER, OTLP]
        check_ports(ports)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if given and self.queues:
            self.console.log("no Kueue: it runs beside the local control plane only")
            self.queues = False
        # The control plane takes longest: it starts while the rest does.
        with self._in_background("control-plane", lambda: self._start_cluster(given)):
            self._start_redis()
            if not self.minimal:
                self._start_jaeger()
        # Kueue's CRDs go in while the services start, and its manager comes
        # up while Prometheus does.
        with self._in_background("Kueue's CRDs", self._install_queues):
            self._start_services(tolerations=[] if given else KWOK_TOLERATION)
        if self.kueue is not None:
            # From this thread, so that the manager dies with this process.
            self.kueue.launch()
        with self._in_background("Kueue", self._start_queues):
            if not self.minimal:
                self._start_prometheus()

    @contextmanager
    def _in_background(self, name: str, start: Callable[[], None]) -> Iterator[None]:
        failure: list[BaseException] = []

        def run() -> None:
            try:
                start()
            except BaseException as error:  # noqa: BLE001 - handed to the main thread
                failure.append(error)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        try:
            yield
        finally:
            # Even when stopping: what the thread starts must be known to be
            # stopped. A signal while joining interrupts the join; join again.
            while thread.is_alive():
                try:
                    thread.join()
                except Stop:
                    self.console.log(f"stopping once {name} has started")
        if failure:
            raise failure[0]

    def _start_cluster(self, given: str | None) -> None:
        if given:
            self.console.log(f"using the cluster of KUBECONFIG={given}")
            self.kubeconfig = Path(given)
            return
        cluster = LocalCluster()
        if cluster.up():
            self.local_cluster = cluster
            self.stops.callback(cluster.down)
        self.kubeconfig = cluster.kubeconfig

    def _install_queues(self) -> None:
        """What Kueue needs of the cluster before its manager starts, unless a
        Kueue serves it already."""
        if not self.queues:
            return
        kueue = Kueue(self.kubeconfig, self.run_dir / "kueue", self.run_dir / "kueue.log")
        self.kube = kueue.kube
        if kueue.answers():
            self.console.log("reusing the Kueue that serves this cluster")
            return
        # Stopped before the cluster: registered after it.
        self.stops.callback(kueue.stop)
        kueue.install()
        self.kueue = kueue

    def _start_queues(self) -> None:
        """Waits for Kueue's manager and registers it, then makes the example
        setup (whether this Kueue or one found running serves it)."""
        if not self.queues:
            return
        started = time.monotonic()
        if self.kueue is not None:
            self.kueue.register()
        assert self.kube is not None
        example_queues(self.kube, self.namespace)
        self.console.log(
            f"Kueue serving, queues {', '.join(TEAMS)} in namespace {self.namespace} "
            f"({time.monotonic() - started:.1f}s after its manager started)"
        )

    def _start_redis(self) -> None:
        redis_server = RedisServer(self.run_dir / "redis", port=REDIS.number)
        self.stops.callback(redis_server.stop)
        redis_server.start()
        self.redis_url = redis_server.url

    def _start_jaeger(self) -> None:
        self.jaeger = Jaeger(
            self.run_dir / "jaeger", otlp_port=OTLP.number, query_port=JAEGER.number
        )
        self.stops.callback(self.jaeger.stop)

    def _start_prometheus(self) -> None:
        rules = render_alert_rules(self.run_dir / "alert-rules.yaml", RELEASE, NAMESPACE)
        self.prometheus = Prometheus(
            self.run_dir / "prometheus",
            {
                f"{RELEASE}-train-conductor-api": f"127.0.0.1:{API_HTTP.number}",
                f"{RELEASE}-train-conductor-controller": f"127.0.0.1:{CONTROLLER.number}",
            },
            {"namespace": NAMESPACE},
            port=PROMETHEUS.number,
            rule_files=(rules,),
            scrape_seconds=5,
        )
        self.stops.callback(self.prometheus.stop)

    def _start_services(self, tolerations: list[dict[str, str]]) -> None:
        import json

        common = {"TC_REDIS_URL": self.redis_url}
        if self.queues:
            # The API takes spec.queue and the controller queues the Jobs in
            # Kueue: `tcctl create --queue team-a` works as the banner says.
            common["TC_QUEUES_ENABLED"] = "true"
        if self.jaeger is not None:
            # Every call recorded: a local stack is for looking at.
            common |= {
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.jaeger.otlp_endpoint,
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
                "OTEL_TRACES_SAMPLER": "always_on",
            }
        api = Service(
            "api",
            "trainconductor_api.main",
            {
                **common,
                "TC_GRPC_PORT": str(API.number),
                "TC_HTTP_PORT": str(API_HTTP.number),
                "TC_DRAIN_SECONDS": "1",  # nothing balances over one local API
                # Trainings' logs (tcctl logs) from the cluster.
                "TC_KUBECONFIG": str(self.kubeconfig),
                "TC_TRAININGS_NAMESPACE": self.namespace,
                "TC_POD_LOGS_ENABLED": "true",
            },
            self.run_dir,
        )
        controller = Service(
            "controller",
            "trainconductor_controller.main",
            {
                **common,
                "TC_KUBECONFIG": str(self.kubeconfig),
                "TC_HTTP_PORT": str(CONTROLLER.number),
                "TC_IMAGE": os.environ.get("TC_IMAGE", "example.com/fms-hf-tuning:latest"),
                "TC_TOLERATIONS": json.dumps(tolerations),
                # Training pods are told where to report their progress.
                "TC_PROGRESS_ADDRESS": f"127.0.0.1:{API.number}",
                **controller_timings(),
            },
            self.run_dir,
        )
        for service in (api, controller):
            self.stops.callback(service.stop)
            service.start()
            self.services.append(service)
        api.wait_http_ok(f"http://127.0.0.1:{API_HTTP.number}/metrics", timeout=60)
        controller.wait_http_ok(f"http://127.0.0.1:{CONTROLLER.number}/readyz", timeout=60)

    def wait(self) -> str:
        """Waits until a process of the stack exits; returns its name."""
        watched: list[tuple[str, subprocess.Popen[bytes] | None]] = [
            (s.name, s.process) for s in self.services
        ]
        for name, server in (
            ("prometheus", self.prometheus),
            ("jaeger", self.jaeger),
            ("kueue", self.kueue),
        ):
            if server is not None:
                watched.append((name, server.process))
        while True:
            for name, process in watched:
                if process is None or process.poll() is not None:
                    return name
            time.sleep(0.5)

    def stop(self) -> None:
        self.stops.close()

    def banner(self) -> str:
        lines = [
            "",
            "  Train Conductor is up.",
            "",
            f"    API (gRPC)      127.0.0.1:{API.number}   (v1, legacy, health, reflection)",
            f"    API metrics     http://127.0.0.1:{API_HTTP.number}/metrics",
            f"    controller      http://127.0.0.1:{CONTROLLER.number}/metrics  /healthz  /readyz",
            f"    Redis           {self.redis_url}",
            f"    Kubernetes      KUBECONFIG={self.kubeconfig}",
        ]
        if self.prometheus is not None and self.jaeger is not None:
            lines += [
                f"    Prometheus      {self.prometheus.url}   (the chart's alerts: /alerts)",
                f"    Jaeger          {self.jaeger.ui}",
            ]
        if self.queues:
            lines.append(
                f"    queues          {', '.join(TEAMS)} (Kueue), in namespace {self.namespace}"
            )
        lines += [
            f"    logs            {self.run_dir}/*.log",
            "",
            "  Submit a training and follow it to the end (in another terminal):",
            "",
            f"    {tcctl()} create -f {ROOT}/examples/lora.yaml --wait",
            f"    {tcctl()} list",
            f"    {tcctl()} logs ID          # its trainer's log (kwok's pods write a few lines)",
        ]
        if self.queues:
            lines += [
                "",
                f"  or into one of Kueue's queues ({' or '.join(TEAMS)}), and see where it waits:",
                "",
                f"    {tcctl()} create -f {ROOT}/examples/lora.yaml --queue {TEAMS[0]}",
                f"    {kubectl(self.kubeconfig)} get clusterqueues,workloads -A",
            ]
        if self.prometheus is not None and self.jaeger is not None:
            query = PROMQL
            graph = f"{self.prometheus.url}/graph?" + urllib.parse.urlencode(
                {"g0.expr": query, "g0.tab": "1"}
            )
            lines += [
                "",
                "  Then see it in Prometheus, trainings by phase:",
                "",
                f"    {query}",
                f"    {graph}",
                "",
                "  and its trace, from submission to the Kubernetes Job, in Jaeger:",
                "",
                f"    {jaeger_search(self.jaeger.ui)}",
            ]
        lines += ["", "  Ctrl-C stops everything.", ""]
        return "\n".join(lines) + "\n"


def kubectl(kubeconfig: Path) -> str:
    return f"{BIN / 'kubectl'} --kubeconfig {kubeconfig}"


def tcctl() -> str:
    if API.number == API.default:
        return str(TCCTL)
    return f"{TCCTL} --address 127.0.0.1:{API.number}"


PROMQL = "sum by (phase) (trainconductor_trainings)"


def jaeger_search(ui: str) -> str:
    query = {"service": "trainconductor-api", "operation": CREATE_SPAN, "limit": "20"}
    return f"{ui}/search?" + urllib.parse.urlencode(query)


CREATE_SPAN = "trainconductor.v1.TrainingService/CreateTraining"


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def main() -> int:
    console = Console()
    minimal = os.environ.get("TC_UP_MINIMAL", "") not in ("", "0")
    queues = os.environ.get("TC_UP_QUEUES", "") != "0"
    up = LocalUp(console, RUN_DIR / "up", minimal, queues)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    code = 0
    try:
        try:
            console.log(
                "starting"
                + (" (minimal: no Prometheus, no Jaeger, no Kueue)" if minimal else "")
                + (" (no Kueue: TC_UP_QUEUES=0)" if not minimal and not queues else "")
            )
            up.start()
            console.write(up.banner())
            name = up.wait()
            console.log(f"{name} exited; see {up.run_dir}/{name}.log")
            code = 1
        finally:
            # From here on nothing stops the cleanup half way: not a second
            # signal (make passes its SIGTERM on), not a closed terminal.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
    except Stop:
        pass
    except (StartFailed, RuntimeError, AssertionError) as error:
        console.log(f"could not start: {error}")
        code = 1
    except Exception:  # noqa: BLE001 - a bug: shown, and what started is stopped all the same
        console.log(f"could not start:\n{traceback.format_exc()}")
        code = 1
    console.log("stopping")
    up.stop()
    console.log("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
