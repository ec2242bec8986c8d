"""Kueue beside the local control plane: its manager (built from its Go module
by hack/tools/install.sh) as a local process, with its CRDs, webhooks and
visibility API installed in the cluster. One manager per cluster (leader
election is off): `up()` reuses one that serves the cluster already. The
queues it serves are devstack/queues.py's.

How the API server reaches the manager on 127.0.0.1:
- Webhooks (admission, and the conversion webhook that Kueue's CRD
  kustomization patches into five CRDs) are registered in `url:` form,
  `https://127.0.0.1:<port><path>`, with the harness's CA as `caBundle`.
  Only the webhooks of Kueue's own objects and of the integrations it runs
  with (`batch/job`) are registered, as Kueue's Helm chart does for the
  integrations it enables: the pod, Deployment and StatefulSet webhooks would
  put every pod of the cluster through an integration that is off.
- The visibility API is an aggregated API, and an APIService can only name a
  Service: `visibility-server` in `kueue-system` is of type ExternalName
  (`localhost`), which the aggregator resolves when it connects (without
  `--enable-aggregator-routing`). Its TLS server name is
  `visibility-server.kueue-system.svc`, hence that name in the certificate.

Certificates: Kueue's internal certificate management is off; one server
certificate from the harness's CA (IP 127.0.0.1, localhost and both `.svc`
names) serves the webhooks, the metrics and the visibility API. The CA is
made once per cluster and kept in the Secret `kueue-system/devstack-kueue-ca`
with the webhook port last used, so that a manager started again against the
same cluster leaves the CRDs as they are (a write of Kueue's big CRDs costs
the API server seconds). The manager
reads the last two from fixed paths, `/etc/kueue/metrics/certs/tls.{crt,key}`
and `/visibility/tls.{crt,key}`, whatever its configuration says. So it runs
chrooted into a root of its own, built in a private mount namespace (which
needs root): every top-level entry of the host's `/` bound in, `/etc` as an
overlay of the host's with `/etc/kueue` added in memory, and `/visibility` in
memory. Nothing is written on the host outside the run directory, and the
namespace goes when the manager exits.

While the manager runs, its webhooks fail closed (`failurePolicy: Fail`), as
in a real installation, so `stop()` removes the webhook configurations and
the APIServices before it stops the manager: a cluster left with them would
refuse every Job. The CRDs, and what was made of them, stay; a Workload that
held quota keeps Kueue's finalizer until a manager runs again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devstack.certificates import CertificateAuthority, KeyPair
from devstack.cluster import BIN, binary
from devstack.orphans import guarded
from devstack.ports import claim, free_port
from devstack.processes import wait_http_ok
from devstack.queues import GROUP, VERSION, VISIBILITY_GROUP, Object, cluster_queue, get_json
from devstack.waiting import wait_for

NAMESPACE = "kueue-system"
# What the manager runs: Jobs only. The webhooks registered follow from it.
FRAMEWORKS = ("batch/job",)
WEBHOOK_GROUPS = frozenset({GROUP, *(f.split("/")[0] for f in FRAMEWORKS)})
# The names of Kueue's release manifests (config/default prefixes "kueue-").
WEBHOOK_CONFIGURATIONS = {
    "MutatingWebhookConfiguration": "kueue-mutating-webhook-configuration",
    "ValidatingWebhookConfiguration": "kueue-validating-webhook-configuration",
}
VISIBILITY_SERVICE = "visibility-server"
# Names the API server may use for the manager (the last two as TLS server
# names of `service:` references).
SERVING_NAMES = (
    "127.0.0.1",
    "localhost",
    "kueue-webhook-service.kueue-system.svc",
    f"{VISIBILITY_SERVICE}.{NAMESPACE}.svc",
)
# On each CRD: the digest of the manifest applied, to tell whether it changed.
DIGEST_ANNOTATION = "devstack.trainconductor.dev/manifest-digest"
# The CA of the harness's Kueue in a cluster, and the webhook port last used.
CA_SECRET = "devstack-kueue-ca"
PORT_ANNOTATION = "devstack.trainconductor.dev/webhook-port"


def log(message: str) -> None:
    print(f"[kueue] {message}", file=sys.stderr, flush=True)


def manifests() -> Path:
    """Kueue's manifests, copied from its module by hack/tools/install.sh."""
    path = BIN / "kueue-manifests"
    if not path.is_dir():
        raise RuntimeError(
            f"Kueue's manifests are missing from {BIN}: run `hack/tools/install.sh kueue`"
        )
    return path


class Kueue:
    """Kueue's manager as a process, and its registration in one cluster.

    `start()` = `install()` (certificates, CRDs, namespace, the visibility
    Service; no process) + `launch()` (the process; from the main thread, so
    that it dies with its parent) + `register()` (waits for it, then the
    webhooks and the APIServices, and waits until the API server reaches both)."""

    def __init__(self, kubeconfig: Path, run_dir: Path, log_path: Path | None = None) -> None:
        """`run_dir` holds its configuration, certificates and (unless
        `log_path` says where) its log."""
        self.kubeconfig = kubeconfig
        self.run_dir = run_dir
        self.log_path = log_path or run_dir / "kueue.log"
        self.webhook_port = free_port()
        self.visibility_port = free_port()
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.registered = False
        self._ca: CertificateAuthority | None = None
        self._serving: KeyPair | None = None
        self._kube: client.ApiClient | None = None

    @property
    def kube(self) -> client.ApiClient:
        if self._kube is None:
            self._kube = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._kube

    # starting

    def up(self) -> bool:
        """Starts Kueue unless one already serves this cluster (`make up`'s,
        say); returns whether it started it."""
        if self.answers():
            log("reusing the Kueue that serves this cluster")
            return False
        self.start()
        return True

    def start(self) -> None:
        self.install()
        self.launch()
        self.register()

    def install(self) -> None:
        """What needs no running manager: the namespace, certificates, the CRDs
        (with their conversion webhook) and the visibility Service. A CRD the
        cluster has as wanted is left alone."""
        binary("kueue")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        core = client.CoreV1Api(self.kube)
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        except ApiException as error:
            if error.status != 409:
                raise
        self._ca = self._certificate_authority(core)
        self._serving = self._ca.server("kueue", SERVING_NAMES, days=30)
        installed = self._installed_crds()
        stale = [c for c in self._crds() if installed.get(c["metadata"]["name"]) != digest(c)]
        for crd in stale:
            crd["metadata"].setdefault("annotations", {})[DIGEST_ANNOTATION] = digest(crd)
        self._apply([*stale, visibility_service(self.visibility_port)])
        if stale:
            wait_for(
                f"the API server to serve {len(stale)} CRDs of Kueue",
                lambda: self._served(stale),
                describe=lambda: str([c["metadata"]["name"] for c in stale]),
            )

    def launch(self) -> None:
        """Starts the manager in a root of its own (see the module's doc)."""
        assert self._serving is not None, "install() first"
        if os.geteuid() != 0:
            raise RuntimeError(
                "Kueue's manager reads certificates from /etc/kueue and /visibility; the "
                "harness gives it them in a private mount namespace, which needs root. "
                "Run as root, or leave Kueue out (TC_UP_QUEUES=0)"
            )
        configuration = self.run_dir / "config.yaml"
        configuration.write_text(json.dumps(self._configuration(), indent=2))
        command = [
            str(Path(binary("kueue")).resolve()),
            f"--config={configuration}",
            f"--kubeconfig={self.kubeconfig}",
        ]
        script = private_root(self.run_dir / "root", self._serving, command)
        unshare = shutil.which("unshare")
        if unshare is None:
            raise RuntimeError("unshare is missing: apt-get install util-linux")
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            guarded([unshare, "--mount", "--propagation", "private", "--", "sh", "-euc", script]),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C is for whoever started it
        )
        log_file.close()

    def register(self, timeout: float = 60) -> None:
        """Waits for the manager, registers its webhooks and visibility API,
        and waits until the API server reaches both."""
        assert self._ca is not None, "install() first"
        wait_http_ok(
            f"http://127.0.0.1:{self.health_port}/readyz",
            timeout,
            process=self.process,
            log=self.log_path,
        )
        ca = self._ca.cert.read_bytes()
        self._apply(
            [
                *webhook_configurations(manifests(), self.webhook_port, ca),
                *visibility_apiservices(manifests(), self.visibility_port, ca),
            ]
        )
        self.registered = True
        wait_for(
            "Kueue's webhooks to answer the API server (a dry-run ClusterQueue)",
            lambda: self._exited() or self.webhooks_answer(),
            timeout,
            describe=self._describe,
        )
        wait_for(
            f"the APIService {VERSION}.{VISIBILITY_GROUP} to be Available",
            lambda: self._exited() or self.visibility_available(),
            timeout,
            describe=self._describe,
        )

    def restart(self, timeout: float = 60) -> None:
        """Kills the manager (SIGKILL: no chance to tidy up) and starts it
        again, with the same ports, certificates and registrations: what a
        crashed Kueue pod's restart looks like. From the thread that started
        it, so that the new one too dies with this process."""
        if self.process is None:
            raise RuntimeError(
                "this Kueue was not started here (make up's, say): it can not be restarted"
            )
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(15)
        self.launch()
        self.register(timeout)

    # state

    def answers(self) -> bool:
        """Whether a Kueue serves this cluster: webhooks registered that
        answer, and the visibility API Available."""
        admission = client.AdmissionregistrationV1Api(self.kube)
        try:
            admission.read_validating_webhook_configuration(
                WEBHOOK_CONFIGURATIONS["ValidatingWebhookConfiguration"]
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return self.webhooks_answer() and self.visibility_available()

    def webhooks_answer(self) -> bool:
        probe = cluster_queue("devstack-probe", gpus=1)
        try:
            client.CustomObjectsApi(self.kube).create_cluster_custom_object(
                GROUP, VERSION, "clusterqueues", probe, dry_run="All"
            )
        except ApiException:
            return False
        return True

    def visibility_available(self) -> bool:
        try:
            service = client.ApiregistrationV1Api(self.kube).read_api_service(
                f"{VERSION}.{VISIBILITY_GROUP}"
            )
        except ApiException:
            return False
        conditions = (service.status.conditions if service.status else None) or []
        return any(c.type == "Available" and c.status == "True" for c in conditions)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _exited(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"Kueue's manager exited with {self.process.returncode}:\n{self.log_tail()}"
            )
        return False

    def _describe(self) -> str:
        return f"manager {'running' if self.alive else 'stopped'}; its log:\n{self.log_tail(15)}"

    # stopping

    def stop(self) -> None:
        """Removes the registrations (so that nothing in the cluster calls a
        manager that is gone), then stops the manager. The CRDs and what was
        made of them stay."""
        if self.registered:
            self.unregister()
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def unregister(self) -> None:
        names = [f"{kind.lower()}/{name}" for kind, name in WEBHOOK_CONFIGURATIONS.items()]
        names += [f"apiservice/{v}.{VISIBILITY_GROUP}" for v in ("v1beta1", "v1beta2")]
        self._kubectl("delete", "--ignore-not-found", "--wait=false", *names)
        self.registered = False

    # the manifests

    def _configuration(self) -> Object:
        assert self._serving is not None
        return {
            "apiVersion": "config.kueue.x-k8s.io/v1beta2",
            "kind": "Configuration",
            "namespace": NAMESPACE,
            "health": {"healthProbeBindAddress": f"127.0.0.1:{self.health_port}"},
            "metrics": {"bindAddress": f"127.0.0.1:{self.metrics_port}"},
            "webhook": {
                "host": "127.0.0.1",
                "port": self.webhook_port,
                # Read as tls.crt and tls.key.
                "certDir": str(self._serving_dir()),
            },
            # One manager per cluster; leader election would only add a wait.
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "visibilityServer": {"bindAddress": "127.0.0.1", "bindPort": self.visibility_port},
            "manageJobsWithoutQueueName": False,
            "integrations": {"frameworks": list(FRAMEWORKS)},
            # As Kueue's own manifests configure it (config/components/manager):
            # its built-in defaults (20 requests a second, one worker per
            # kind) admit a few Workloads a second.
            "clientConnection": {"qps": 50, "burst": 100},
            "controller": {
                "groupKindConcurrency": {
                    "Job.batch": 5,
                    "Pod": 5,
                    "Workload.kueue.x-k8s.io": 5,
                    "LocalQueue.kueue.x-k8s.io": 1,
                    "Cohort.kueue.x-k8s.io": 1,
                    "ClusterQueue.kueue.x-k8s.io": 1,
                    "ResourceFlavor.kueue.x-k8s.io": 1,
                }
            },
        }

    def _serving_dir(self) -> Path:
        assert self._serving is not None
        directory = self.run_dir / "serving-certs"
        directory.mkdir(exist_ok=True)
        shutil.copyfile(self._serving.cert, directory / "tls.crt")
        shutil.copyfile(self._serving.key, directory / "tls.key")
        return directory

    def _certificate_authority(self, core: client.CoreV1Api) -> CertificateAuthority:
        """The cluster's CA for Kueue, made once and kept in a Secret, and the
        webhook port used before if it is free: then the conversion webhooks
        of the CRDs, which name both, stay as they are."""
        directory = self.run_dir / "certs"
        try:
            secret = core.read_namespaced_secret(CA_SECRET, NAMESPACE)
        except ApiException as error:
            if error.status != 404:
                raise
            ca = CertificateAuthority(directory, "kueue-ca", days=365)
            data = {"tls.crt": ca.cert.read_bytes(), "tls.key": ca.key.read_bytes()}
            body = client.V1Secret(
                metadata=client.V1ObjectMeta(
                    name=CA_SECRET, annotations={PORT_ANNOTATION: str(self.webhook_port)}
                ),
                type="kubernetes.io/tls",
                data={k: base64.b64encode(v).decode() for k, v in data.items()},
            )
            core.create_namespaced_secret(NAMESPACE, body)
            return ca
        ca = CertificateAuthority(directory, "kueue-ca", generate=False)
        ca.cert.write_bytes(base64.b64decode(secret.data["tls.crt"]))
        ca.key.touch(mode=0o600)
        ca.key.write_bytes(base64.b64decode(secret.data["tls.key"]))
        previous = int((secret.metadata.annotations or {}).get(PORT_ANNOTATION, "0"))
        if previous and claim(previous):
            self.webhook_port = previous
        else:
            patch = {"metadata": {"annotations": {PORT_ANNOTATION: str(self.webhook_port)}}}
            core.patch_namespaced_secret(CA_SECRET, NAMESPACE, patch)
        return ca

    def _installed_crds(self) -> dict[str, str | None]:
        """The CRDs of the cluster, each with the digest of what was applied
        (metadata only: Kueue's CRDs are megabytes)."""
        items = (
            get_json(
                self.kube,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            )["items"]
            or []
        )  # null when there are none
        return {
            i["metadata"]["name"]: (i["metadata"].get("annotations") or {}).get(DIGEST_ANNOTATION)
            for i in items
        }

    def _served(self, crds: list[Object]) -> bool:
        """Whether discovery lists every one of `crds` (it lists a CRD once
        it is Established): cheaper to ask than the CRDs themselves."""
        wanted: dict[str, set[str]] = {}
        for crd in crds:
            storage = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
            group_version = f"{crd['spec']['group']}/{storage}"
            wanted.setdefault(group_version, set()).add(crd["spec"]["names"]["plural"])
        for group_version, plurals in wanted.items():
            try:
                served = get_json(self.kube, f"/apis/{group_version}")["resources"]
            except ApiException:
                return False  # 404 until the first of the group is served
            if not plurals <= {r["name"] for r in served}:
                return False
        return True

    def _crds(self) -> list[Object]:
        """The CRDs, with the conversion webhook that Kueue's kustomization
        patches in (the same CRDs), pointed at the manager."""
        assert self._ca is not None
        crd_dir = manifests() / "crd"
        converted = set()
        kustomization = load_yaml(crd_dir / "kustomization.yaml")
        for patch in kustomization.get("patches") or []:
            if "webhook_in_" in patch.get("path", ""):
                document = load_yaml(crd_dir / patch["path"])
                converted.add(document["metadata"]["name"])
        crds = []
        for path in sorted((crd_dir / "bases").glob("*.yaml")):
            crd = load_yaml(path)
            if crd["metadata"]["name"] in converted:
                crd["spec"]["conversion"] = {
                    "strategy": "Webhook",
                    "webhook": {
                        "clientConfig": {
                            "url": f"https://127.0.0.1:{self.webhook_port}/convert",
                            "caBundle": base64.b64encode(self._ca.cert.read_bytes()).decode(),
                        },
                        "conversionReviewVersions": ["v1"],
                    },
                }
            crds.append(crd)
        return crds

    def _apply(self, objects: list[Object]) -> None:
        self._kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=devstack",
            "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
        )  # fmt: skip

    def _kubectl(self, *args: str, input: str = "") -> str:
        result = subprocess.run(
            [binary("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            text=True,
            capture_output=True,
            input=input,  # never the terminal
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {args[0]} failed: {result.stderr.strip()[-2000:]}")
        return result.stdout


def load_yaml(path: Path) -> Object:
    # libyaml's parser: the pure-Python one takes seconds over the CRDs.
    document: Object = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    return document


def digest(obj: Object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def private_root(root: Path, serving: KeyPair, command: list[str]) -> str:
    """A shell script, for a private mount namespace, that builds at `root` a
    root of the host's top-level entries with Kueue's two fixed certificate
    directories added, and execs `command` chrooted into it."""
    q = shlex.quote
    root.mkdir(parents=True, exist_ok=True)
    r = q(str(root))
    lines = [f"mount -t tmpfs -o mode=0755 kueue-root {r}"]
    for entry in sorted(Path("/").iterdir()):
        target = q(str(root / entry.name))
        if entry.is_symlink():
            lines.append(f"ln -s {q(os.readlink(entry))} {target}")
        elif entry.name == "etc":
            layer = root / ".etc-layer"
            lines += [
                f"mkdir -p {target} {q(str(layer / 'upper'))} {q(str(layer / 'work'))}",
                f"mount -t overlay kueue-etc -o lowerdir=/etc,upperdir={q(str(layer / 'upper'))},"
                f"workdir={q(str(layer / 'work'))} {target}",
            ]
            # An overlay shows what lies under the mounts within /etc (a
            # container's /etc/hosts, say): mount them again on top.
            for point in mount_points_under(Path("/etc")):
                lines.append(f"mount --bind {q(str(point))} {q(str(root) + str(point))}")
        elif entry.is_dir():
            lines.append(f"mkdir {target} && mount --rbind {q(str(entry))} {target}")
        elif entry.is_file():
            lines.append(f"touch {target} && mount --bind {q(str(entry))} {target}")
    for directory in ("etc/kueue/metrics/certs", "visibility"):
        d = q(str(root / directory))
        lines += [
            f"mkdir -p {d}",
            f"cp {q(str(serving.cert))} {d}/tls.crt",
            f"cp {q(str(serving.key))} {d}/tls.key",
        ]
    chroot = shutil.which("chroot") or "chroot"
    lines.append(f"exec {q(chroot)} {r} {' '.join(q(a) for a in command)}")
    return "\n".join(lines) + "\n"


def mount_points_under(directory: Path) -> list[Path]:
    """The mount points below `directory` in this mount namespace, shallowest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # The fifth field, with spaces and the like octal-escaped.
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(f"{directory}/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts))


def webhook_configurations(manifest_dir: Path, port: int, ca: bytes) -> list[Object]:
    """Kueue's webhook configurations, calling 127.0.0.1:`port`, with the
    webhooks of Kueue's objects and of its enabled integrations."""
    documents = yaml.safe_load_all((manifest_dir / "webhook" / "manifests.yaml").read_text())
    configurations = []
    for document in documents:
        if not document:
            continue
        webhooks = []
        for webhook in document["webhooks"]:
            groups = {g for rule in webhook.get("rules", []) for g in rule.get("apiGroups", [])}
            if not groups <= WEBHOOK_GROUPS:
                continue
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca).decode(),
            }
            webhooks.append(webhook)
        document["metadata"] = {"name": WEBHOOK_CONFIGURATIONS[document["kind"]]}
        document["webhooks"] = webhooks
        configurations.append(document)
    return configurations


def visibility_apiservices(manifest_dir: Path, port: int, ca: bytes) -> list[Object]:
    """Kueue's APIServices for its visibility API (v1beta1, v1beta2), to the
    ExternalName Service on `port`, verified with `ca`."""
    services = []
    for path in sorted((manifest_dir / "visibility").glob("apiservice_*.yaml")):
        service: Object = yaml.safe_load(path.read_text())
        spec = service["spec"]
        spec.pop("insecureSkipTLSVerify", None)
        spec["caBundle"] = base64.b64encode(ca).decode()
        spec["service"] = {"name": VISIBILITY_SERVICE, "namespace": NAMESPACE, "port": port}
        services.append(service)
    return services


def visibility_service(port: int) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": VISIBILITY_SERVICE, "namespace": NAMESPACE},
        "spec": {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    }


@contextmanager
def running_kueue(kubeconfig: Path, run_dir: Path) -> Iterator[Kueue]:
    """Kueue serving the cluster of `kubeconfig` while the block runs: the
    one that serves it already, or one started here and stopped after."""
    kueue = Kueue(kubeconfig, run_dir)
    started = kueue.up()
    try:
        yield kueue
    finally:
        if started:
            kueue.stop()
