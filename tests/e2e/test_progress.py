"""Progress reports from training pods, end to end: the controller gives
each training pod the API's address and a projected token for the progress
audience; the test plays the trainer, with a token the TokenRequest API
binds to the training's pod (as the kubelet gets the projected one), and
the API checks it with TokenReview and reads the pod. A pod reports for its
own training only; a token bound to no pod, or for another audience, is
refused."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pexpect
import pytest
from kubernetes import client
from trainconductor.v1 import progress_pb2
from trainconductor.v1 import progress_service_pb2 as ppb
from trainconductor.v1 import progress_service_pb2_grpc as ppb_grpc
from trainconductor.v1 import training_service_pb2 as pb
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.integrations.integration_utils import get_reporting_integration_callbacks
from transformers.trainer_callback import CallbackHandler, DefaultFlowCallback

from devstack.ports import free_port
from devstack.redis_server import RedisServer
from devstack.specs import lora_spec
from devstack.stack import Cluster, Stack
from devstack.waiting import wait_for
from tests.support.tcctl import env, tcctl_path

USERS = f"tc-users-{uuid.uuid4().hex[:6]}"
PROGRESS = f"tc-progress-{uuid.uuid4().hex[:6]}"
# Long enough for the test to report while the training runs.
RUN_DURATION = "600s"
STALL_SECONDS = 3


@dataclass
class ProgressStack:
    stack: Stack
    user: tuple[tuple[str, str], ...]  # the metadata of the trainings' owner

    @property
    def kube(self) -> client.ApiClient:
        return self.stack.kube

    @property
    def namespace(self) -> str:
        return self.stack.namespace

    @property
    def reports(self) -> ppb_grpc.ProgressServiceStub:
        assert self.stack.channel is not None
        return ppb_grpc.ProgressServiceStub(self.stack.channel)

    def create(self) -> pb.Training:
        request = pb.CreateTrainingRequest(spec=lora_spec())
        return self.stack.trainings.CreateTraining(request, metadata=self.user, timeout=10).training

    def get(self, training_id: str) -> pb.Training:
        request = pb.GetTrainingRequest(id=training_id)
        return self.stack.trainings.GetTraining(request, metadata=self.user, timeout=10).training

    def running_pod(self, training: pb.Training) -> client.V1Pod:
        """The training's pod once it runs, kept running for the test."""
        pod: client.V1Pod = wait_for(
            f"a running pod of {training.id}",
            lambda: next(
                (
                    p
                    for p in self.stack.pods_of(f"train-{training.id}")
                    if p.status.phase == "Running"
                ),
                None,
            ),
        )
        return pod

    def report(
        self, token: str, progress: progress_pb2.Progress, training_id: str = ""
    ) -> ppb.ReportProgressResponse:
        request = ppb.ReportProgressRequest(training_id=training_id, progress=progress)
        metadata = (("authorization", f"Bearer {token}"),)
        response: ppb.ReportProgressResponse = self.reports.ReportProgress(
            request, metadata=metadata, timeout=15
        )
        return response

    def refusal(self, token: str, training_id: str = "") -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as err:
            self.report(token, progress_pb2.Progress(step=1, total_steps=10), training_id)
        code: grpc.StatusCode = err.value.code()
        return code


def token_for(
    kube: client.ApiClient,
    namespace: str,
    audience: str,
    pod: client.V1Pod | None = None,
    account: str = "default",
) -> str:
    """A token from the TokenRequest API, bound to `pod` when given, as the
    kubelet asks for a projected one."""
    bound = (
        client.V1BoundObjectReference(
            api_version="v1", kind="Pod", name=pod.metadata.name, uid=pod.metadata.uid
        )
        if pod is not None
        else None
    )
    spec = client.V1TokenRequestSpec(
        audiences=[audience], expiration_seconds=600, bound_object_ref=bound
    )
    response = client.CoreV1Api(kube).create_namespaced_service_account_token(
        account, namespace, client.AuthenticationV1TokenRequest(spec=spec)
    )
    return str(response.status.token)


@pytest.fixture(scope="module")
def progress_stack(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProgressStack]:
    """Redis, an API that takes ServiceAccount tokens (users' and pods'
    audiences apart) and a controller that gives training pods the API's
    address, in a namespace of their own."""
    log_dir = tmp_path_factory.mktemp("progress")
    redis_server = RedisServer(Path(log_dir) / "redis")
    redis_server.start()
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube = cluster.api_client()
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    stack = Stack(cluster, redis_server, name, Path(log_dir))
    kubeflow_port = free_port()
    try:
        stack.start_api(
            TC_AUTH_MODES='["token-review"]',
            TC_KUBECONFIG=str(cluster.kubeconfig),
            TC_TOKEN_REVIEW_AUDIENCE=USERS,
            TC_PROGRESS_TOKEN_AUDIENCE=PROGRESS,
            TC_TRAININGS_NAMESPACE=name,
            TC_PROGRESS_EVENT_INTERVAL_SECONDS="1",
            TC_KUBEFLOW_STATUS_ENABLED="true",
            TC_KUBEFLOW_STATUS_PORT=str(kubeflow_port),
        )
        stack.start_controller(
            TC_PROGRESS_ADDRESS=f"127.0.0.1:{stack.api_port}",
            TC_PROGRESS_TOKEN_AUDIENCE=PROGRESS,
            TC_PROGRESS_STALL_SECONDS=str(STALL_SECONDS),
            TC_PROGRESS_STALL_CHECK_SECONDS="0.5",
            TC_KUBEFLOW_STATUS_ADDRESS=f"127.0.0.1:{kubeflow_port}",
        )
        wait_for(
            "the namespace's default ServiceAccount",
            lambda: core.list_namespaced_service_account(name).items,
        )
        core.create_namespaced_service_account(
            name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="alice"))
        )
        user = (("authorization", f"Bearer {token_for(kube, name, USERS, account='alice')}"),)
        yield ProgressStack(stack, user)
    finally:
        stack.stop_all()
        redis_server.stop()
        core.delete_namespace(name)


def keep_running(ps: ProgressStack, pod: client.V1Pod) -> None:
    client.CoreV1Api(ps.kube).patch_namespaced_pod(
        str(pod.metadata.name),
        ps.namespace,
        {"metadata": {"annotations": {"kwok.trainconductor.dev/run-duration": RUN_DURATION}}},
    )


def test_a_pod_reports_its_trainings_progress_with_its_bound_token(
    progress_stack: ProgressStack,
) -> None:
    ps = progress_stack
    training = ps.create()
    pod = ps.running_pod(training)
    keep_running(ps, pod)
    container = pod.spec.containers[0]
    env = {e.name: e.value for e in container.env}
    assert env["TC_PROGRESS_ADDRESS"] == f"127.0.0.1:{ps.stack.api_port}"
    projected = next(v for v in pod.spec.volumes if v.projected is not None)
    assert projected.projected.sources[0].service_account_token.audience == PROGRESS

    token = token_for(ps.kube, ps.namespace, PROGRESS, pod)
    watch = ps.stack.trainings.WatchTraining(
        pb.WatchTrainingRequest(id=training.id), metadata=ps.user, timeout=60
    )
    first = ps.report(token, progress_pb2.Progress(step=10, total_steps=100, loss=2.5))
    assert first.training_id == training.id
    assert first.progress.percent == 10.0
    for response in watch:
        if response.event.reason == "Progress":
            assert response.event.progress.step == 10
            break
    watch.cancel()
    wait_for(
        "a second report after the first's millisecond",
        lambda: ps.report(
            token, progress_pb2.Progress(step=20, total_steps=100, loss=2.1), training.id
        ).progress.HasField("eta"),
    )
    got = ps.get(training.id)
    assert got.progress.step == 20
    assert got.progress.loss == 2.1
    assert got.progress.eta.ToMilliseconds() > 0


def test_a_pod_can_not_report_for_another_training_nor_a_token_bound_to_no_pod(
    progress_stack: ProgressStack,
) -> None:
    ps = progress_stack
    mine, theirs = ps.create(), ps.create()
    my_pod = ps.running_pod(mine)
    keep_running(ps, my_pod)
    my_token = token_for(ps.kube, ps.namespace, PROGRESS, my_pod)
    assert ps.refusal(my_token, training_id=theirs.id) == grpc.StatusCode.PERMISSION_DENIED

    # A pod labelled as the training's, but of no Job of it.
    core = client.CoreV1Api(ps.kube)
    impostor = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=f"impostor-{uuid.uuid4().hex[:6]}",
            labels={"trainconductor.dev/training-id": theirs.id},
        ),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="c", image="example.com/x:1")],
            tolerations=[client.V1Toleration(**t) for t in ps.stack.cluster.tolerations],
        ),
    )
    made = core.create_namespaced_pod(ps.namespace, impostor)
    impostor_token = token_for(ps.kube, ps.namespace, PROGRESS, made)
    assert ps.refusal(impostor_token) == grpc.StatusCode.PERMISSION_DENIED

    unbound = token_for(ps.kube, ps.namespace, PROGRESS)
    assert ps.refusal(unbound, training_id=mine.id) == grpc.StatusCode.UNAUTHENTICATED
    users_token = token_for(ps.kube, ps.namespace, USERS, my_pod)
    assert ps.refusal(users_token, training_id=mine.id) == grpc.StatusCode.UNAUTHENTICATED
    assert ps.refusal("not-a-token") == grpc.StatusCode.UNAUTHENTICATED
    # A pod's token is no user's: the users' API refuses it.
    with pytest.raises(grpc.RpcError) as err:
        ps.stack.trainings.GetTraining(
            pb.GetTrainingRequest(id=mine.id),
            metadata=(("authorization", f"Bearer {my_token}"),),
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not ps.get(theirs.id).HasField("progress")


def stalled_gauge(ps: ProgressStack) -> float:
    (controller,) = ps.stack.controllers.values()
    url = f"http://127.0.0.1:{controller.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    line = next(x for x in text.splitlines() if x.startswith("trainconductor_trainings_stalled "))
    return float(line.split()[1])


def test_a_running_training_whose_reports_stop_is_stalled_until_it_reports_again(
    progress_stack: ProgressStack,
) -> None:
    ps = progress_stack
    training = ps.create()
    pod = ps.running_pod(training)
    keep_running(ps, pod)
    token = token_for(ps.kube, ps.namespace, PROGRESS, pod)
    ps.report(token, progress_pb2.Progress(step=5, total_steps=100))
    reported = time.monotonic()
    watch = ps.stack.trainings.WatchTraining(
        pb.WatchTrainingRequest(id=training.id), metadata=ps.user, timeout=60
    )
    stalled = next(r.event for r in watch if r.event.reason == "Stalled")
    assert time.monotonic() - reported >= STALL_SECONDS - 0.1
    assert stalled.stalled
    assert stalled.phase == pb.PHASE_RUNNING
    assert f"no progress report for over {STALL_SECONDS} seconds" in stalled.message
    got = ps.get(training.id)
    assert got.stalled
    (condition,) = [c for c in got.conditions if c.type == "Stalled"]
    assert (condition.status, condition.reason) == ("True", "NoProgressReports")
    assert wait_for("the stalled gauge", lambda: stalled_gauge(ps) >= 1)

    ps.report(token, progress_pb2.Progress(step=6, total_steps=100))
    resumed = next(r.event for r in watch if r.event.reason != "Stalled")
    watch.cancel()
    assert resumed.reason == "ProgressResumed"
    assert resumed.progress.step == 6
    got = ps.get(training.id)
    assert not got.stalled
    assert not [c for c in got.conditions if c.type == "Stalled"]


def test_tcctl_watch_shows_the_bar_move_with_its_eta_then_the_stall(
    progress_stack: ProgressStack,
) -> None:
    ps = progress_stack
    training = ps.create()
    pod = ps.running_pod(training)
    keep_running(ps, pod)
    token = token_for(ps.kube, ps.namespace, PROGRESS, pod)
    user_token = ps.user[0][1].removeprefix("Bearer ")
    screen = io.StringIO()
    child = pexpect.spawn(
        tcctl_path(), ["watch", training.id],
        env=env(f"127.0.0.1:{ps.stack.api_port}", TC_TOKEN=user_token),
        encoding="utf-8", dimensions=(24, 200), timeout=30,
    )  # fmt: skip
    child.logfile_read = screen
    try:
        child.expect("RUNNING")
        ps.report(token, progress_pb2.Progress(step=10, total_steps=100, loss=2.5))
        child.expect(r"10\.0%  step 10/100")

        # Reported until an event shows it: one per second at most.
        def shown(step: int) -> bool:
            ps.report(token, progress_pb2.Progress(step=step, total_steps=100, loss=1.75))
            expected = [rf"step {step}/100  ETA \S+  loss 1\.75", pexpect.TIMEOUT]
            found: int = child.expect(expected, 0.5)
            return found == 0

        wait_for("the bar at step 40 with an ETA", lambda: shown(40), timeout=30)
        child.expect("Stalled", timeout=STALL_SECONDS + 15)
        ps.report(token, progress_pb2.Progress(step=41, total_steps=100))
        child.expect("ProgressResumed")
    finally:
        child.terminate(force=True)
    # The bar moves in the status line: a progress event prints no line of
    # its own (a stall, and its end, do).
    assert re.search(r"\bProgress  \[", screen.getvalue()) is None
    assert re.search(r"ProgressResumed  \[", screen.getvalue())


def post_status(url: str, token: str | None, body: object) -> tuple[int, dict[str, Any]]:
    """A plain HTTP client of Kubeflow Trainer's protocol, as its docs show one."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_trainer_made_for_kubeflow_trainer_reports_unchanged(
    progress_stack: ProgressStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers adds its own KubeflowCallback when the pod has
    KUBEFLOW_TRAINER_SERVER_URL, and it reports here; so does a plain HTTP
    client of the protocol, for its own training only."""
    ps = progress_stack
    training, other = ps.create(), ps.create()
    pod = ps.running_pod(training)
    keep_running(ps, pod)
    env = {str(e.name): str(e.value) for e in pod.spec.containers[0].env}
    url = env["KUBEFLOW_TRAINER_SERVER_URL"]
    assert url.endswith(f"/namespaces/{ps.namespace}/trainjobs/{training.id}/status")
    assert env["KUBEFLOW_TRAINER_SERVER_TOKEN"] == env["TC_PROGRESS_TOKEN_FILE"]
    token = token_for(ps.kube, ps.namespace, PROGRESS, pod)

    # A plain client: the step and total in its metrics, the ETA from their rate.
    def report(step: int) -> dict[str, Any]:
        metrics = [
            {"name": "current_step", "value": str(step)},
            {"name": "total_steps", "value": "100"},
            {"name": "loss", "value": "0.875"},
            {"name": "note", "value": "warm"},  # text: left out
        ]
        code, answer = post_status(url, token, {"trainerStatus": {"metrics": metrics}})
        assert code == 200, answer
        return answer

    report(20)

    def with_eta() -> dict[str, Any] | None:
        answer = report(40)
        return answer if "estimatedRemainingSeconds" in answer["trainerStatus"] else None

    answer = wait_for("an ETA from two reports", with_eta)
    assert answer["trainerStatus"]["progressPercentage"] == 40
    got = ps.get(training.id)
    assert (got.progress.step, got.progress.total_steps, got.progress.loss) == (40, 100, 0.875)
    assert "note" not in got.progress.metrics

    other_url = url.replace(training.id, other.id)
    assert post_status(other_url, token, {"trainerStatus": {}})[0] == 403
    assert post_status(url, None, {"trainerStatus": {}})[0] == 401
    code, refusal = post_status(url, token, {"progress": 5})
    assert (code, refusal["kind"], refusal["code"]) == (400, "Status", 400)

    # transformers, as a Trainer runs it: the pod's environment turns on its
    # KubeflowCallback.
    token_file = tmp_path / "token"
    token_file.write_text(token)
    monkeypatch.setenv("KUBEFLOW_TRAINER_SERVER_URL", url)
    monkeypatch.setenv("KUBEFLOW_TRAINER_SERVER_TOKEN", str(token_file))
    monkeypatch.delenv("KUBEFLOW_TRAINER_SERVER_CA_CERT", raising=False)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none")
    assert "kubeflow" in args.report_to
    reporting = get_reporting_integration_callbacks(args.report_to)  # type: ignore[no-untyped-call]
    callbacks = [DefaultFlowCallback, *reporting]
    handler = CallbackHandler(callbacks, None, None, None, None)  # type: ignore[no-untyped-call]
    state, control = TrainerState(), TrainerControl()
    state.max_steps = 100
    handler.on_train_begin(args, state, control)
    state.global_step, state.epoch = 100, 2.0
    handler.on_log(args, state, control, {"loss": 0.5, "learning_rate": 1e-5, "epoch": 2.0})
    handler.on_train_end(args, state, control)
    got = ps.get(training.id)
    assert got.progress.percent == 100.0
    assert (got.progress.loss, got.progress.learning_rate, got.progress.epoch) == (0.5, 1e-5, 2.0)
