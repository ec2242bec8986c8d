"""Multi-node trainings on the real control plane: an Indexed Job per
attempt with its headless Service, the environment torchrun reads, and what
a failed rank, a user's error and a drained node each lead to."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from kubernetes import client
from trainconductor.v1 import training_service_pb2 as pb

from devstack.job_counter import JobCreations
from devstack.specs import lora_spec
from devstack.stack import Cluster, Stack, running_stack
from devstack.waiting import wait_for

FINAL = {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED}
RANK = "batch.kubernetes.io/job-completion-index"
# Long enough for a test to fail or evict a rank while the gang runs.
RUN = "8s"
CONTROLLER_ENV = {
    "TC_POD_ANNOTATIONS": json.dumps({"kwok.trainconductor.dev/run-duration": RUN}),
    # A finished training's stream keeps its last events only; a watcher
    # that a busy machine kept more than that behind at the end would miss
    # the restart these tests look for. Keep them all.
    "TC_FINISHED_EVENTS_KEPT": "1000",
}


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        cluster, tmp_path_factory.mktemp("multinode"), controller_env=CONTROLLER_ENV
    ) as running:
        yield running


def gang_spec(nodes: int, *, max_retries: int | None = None, gpus: int = 1) -> pb.TrainingSpec:
    spec = lora_spec()
    spec.resources.nodes = nodes
    spec.resources.gpus = gpus
    if max_retries is not None:
        spec.max_retries = max_retries
    return spec


def ranks_running(stack: Stack, job: str, nodes: int) -> dict[int, client.V1Pod]:
    """The gang's pods by rank once all of them run; {} until then."""
    pods = [p for p in stack.pods_of(job) if p.status.phase == "Running"]
    by_rank = {int(p.metadata.labels[RANK]): p for p in pods}
    return by_rank if len(by_rank) == nodes else {}


def fail_rank(stack: Stack, job: str, nodes: int, rank: int, code: int, **said: str) -> None:
    """Makes the trainer of `rank` exit with `code` (kwok's pod-fail stage)."""
    pod = wait_for(
        f"all {nodes} ranks of {job} to run", lambda: ranks_running(stack, job, nodes), 120
    )[rank]
    annotations = {
        "kwok.trainconductor.dev/fail": "true",
        "kwok.trainconductor.dev/exit-code": str(code),
        "kwok.trainconductor.dev/reason": said.get("reason", "Error"),
        "kwok.trainconductor.dev/message": said.get("message", ""),
    }
    client.CoreV1Api(stack.kube).patch_namespaced_pod(
        pod.metadata.name, stack.namespace, {"metadata": {"annotations": annotations}}
    )


def controller_metric(stack: Stack, sample: str) -> float:
    """A sample of the controller's /metrics, such as 'name{label="value"}'."""
    port = stack.controllers["controller-0"].http_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def watching(stack: Stack, training_id: str) -> Future[list[pb.TrainingEvent]]:
    """Every event of the training, from a watch that follows it to its end
    (a finished training keeps only its last few)."""

    def watch() -> list[pb.TrainingEvent]:
        request = pb.WatchTrainingRequest(id=training_id)
        return [r.event for r in stack.trainings.WatchTraining(request, timeout=120)]

    return ThreadPoolExecutor(1).submit(watch)


@pytest.mark.parametrize("nodes", [2, 4])
def test_a_multi_node_training_runs_every_rank_with_torchruns_environment(
    stack: Stack, nodes: int
) -> None:
    training = stack.create(gang_spec(nodes))
    job = f"train-{training.id}"
    by_rank = wait_for(f"all {nodes} ranks to run", lambda: ranks_running(stack, job, nodes))
    assert sorted(by_rank) == list(range(nodes))
    for rank, pod in by_rank.items():
        assert (pod.spec.hostname, pod.spec.subdomain) == (f"{job}-{rank}", job)
        env = {e.name: e for e in pod.spec.containers[0].env}
        for prefix in ("", "PET_"):
            assert env[prefix + "MASTER_ADDR"].value == f"{job}-0.{job}"  # the same for all
            assert env[prefix + "NNODES"].value == str(nodes)
            assert env[prefix + "NPROC_PER_NODE"].value == "1"
            assert env[prefix + "MASTER_PORT"].value == "29500"
            field = env[prefix + "NODE_RANK"].value_from.field_ref.field_path
            assert field == f"metadata.annotations['{RANK}']"
        assert pod.metadata.annotations[RANK] == str(rank)  # what NODE_RANK reads
        assert env["WORLD_SIZE"].value == str(nodes)

    summed = wait_for("the training to say every rank runs",
                      lambda: (t := stack.get(training.id)).phase == pb.PHASE_RUNNING and t,
                      describe=lambda: stack.get(training.id).message)  # fmt: skip
    assert summed.message == f"{nodes}/{nodes} ranks running"
    ranks = {c.type: c.status for c in summed.conditions if c.type.startswith("Rank")}
    assert ranks == {f"Rank{r}": "True" for r in range(nodes)}

    # The headless Service resolves every rank in the API.
    service = client.CoreV1Api(stack.kube).read_namespaced_service(job, stack.namespace)
    assert service.spec.cluster_ip == "None"
    assert service.metadata.owner_references[0].name == job

    def hostnames() -> set[str]:
        slices = client.DiscoveryV1Api(stack.kube).list_namespaced_endpoint_slice(
            stack.namespace, label_selector=f"kubernetes.io/service-name={job}"
        )
        return {str(e.hostname) for s in slices.items for e in s.endpoints or []}

    wait_for("the Service's endpoints to list every rank",
             lambda: hostnames() == {f"{job}-{r}" for r in range(nodes)},
             describe=lambda: str(hostnames()))  # fmt: skip

    done = stack.wait_for_phase(training.id, FINAL)
    assert done.phase == pb.PHASE_COMPLETED
    assert (done.attempts, done.retries, done.job_name) == (1, 0, job)


def test_a_failed_rank_restarts_the_whole_gang_as_a_second_job(stack: Stack) -> None:
    creations = JobCreations(stack.kube, stack.namespace)
    training = stack.create(gang_spec(4, max_retries=2))
    events = watching(stack, training.id)
    first = f"train-{training.id}"
    fail_rank(stack, first, 4, 3, 137, reason="OOMKilled")

    done = stack.wait_for_phase(training.id, FINAL, timeout=90)
    assert done.phase == pb.PHASE_COMPLETED
    assert (done.attempts, done.retries) == (2, 1)
    assert done.job_name == f"{first}-a2"
    restarted = [e for e in events.result() if e.reason == "Restarting"]
    assert [e.message for e in restarted] == [
        "attempt 2: rank 3 exited with code 137 (OOMKilled) in attempt 1; "
        "the gang restarts (retry 1 of 2)"
    ]
    assert restarted[0].attempt == 2
    restarts = (
        'trainconductor_controller_failed_attempts_total{cause="retryable",outcome="restarted"}'
    )
    assert controller_metric(stack, restarts) >= 1
    wait_for(
        "the first attempt's Job to go",
        lambda: first not in {j.metadata.name for j in stack.jobs()},
    )
    created = creations.stop()
    assert creations.error is None
    assert {n: c for n, c in created.items() if training.id in n} == {first: 1, f"{first}-a2": 1}


def test_a_users_error_fails_the_training_at_once_with_its_message(stack: Stack) -> None:
    creations = JobCreations(stack.kube, stack.namespace)
    training = stack.create(gang_spec(4, max_retries=3))
    job = f"train-{training.id}"
    fail_rank(stack, job, 4, 1, 1, message="data_path: no such file /data/x.jsonl")

    failed = stack.wait_for_phase(training.id, FINAL)
    assert failed.phase == pb.PHASE_FAILED
    assert failed.reason == "UserError"
    assert failed.message.startswith(
        "rank 1 exited with code 1 (Error): data_path: no such file /data/x.jsonl"
    )
    assert (failed.attempts, failed.retries) == (1, 0)
    created = creations.stop()
    assert {n: c for n, c in created.items() if training.id in n} == {job: 1}


def test_a_drained_node_restarts_the_gang_without_spending_a_retry(stack: Stack) -> None:
    training = stack.create(gang_spec(4, max_retries=1))
    events = watching(stack, training.id)
    job = f"train-{training.id}"
    pod = wait_for("all 4 ranks to run", lambda: ranks_running(stack, job, 4))[2]
    # What `kubectl drain` does to each pod of the node: the Eviction API.
    eviction = client.V1Eviction(
        metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=stack.namespace)
    )
    client.CoreV1Api(stack.kube).create_namespaced_pod_eviction(
        pod.metadata.name, stack.namespace, eviction
    )

    done = stack.wait_for_phase(training.id, FINAL, timeout=90)
    assert done.phase == pb.PHASE_COMPLETED
    assert (done.attempts, done.retries) == (2, 0)  # the budget is whole
    restarted = [e.message for e in events.result() if e.reason == "Restarting"]
    assert len(restarted) == 1
    assert restarted[0].startswith("attempt 2: rank 2 was stopped by Kubernetes (")
    assert "no retry spent" in restarted[0]


def test_cancel_leaves_no_job_or_service_of_any_attempt(stack: Stack) -> None:
    training = stack.create(gang_spec(2, max_retries=1))
    job = f"train-{training.id}"
    fail_rank(stack, job, 2, 0, 137)
    wait_for("the second attempt to run", lambda: ranks_running(stack, f"{job}-a2", 2))
    stack.cancel(training.id)
    canceled = stack.wait_for_phase(training.id, FINAL)
    assert canceled.phase == pb.PHASE_CANCELED
    core = client.CoreV1Api(stack.kube)

    def left() -> list[str]:
        pods = core.list_namespaced_pod(
            stack.namespace, label_selector=f"trainconductor.dev/training-id={training.id}"
        ).items
        names = [j.metadata.name for j in stack.jobs()]
        names += [s.metadata.name for s in core.list_namespaced_service(stack.namespace).items]
        names += [p.metadata.name for p in pods]
        return [str(n) for n in names if training.id in str(n)]

    wait_for(
        "no Job, Service or pod of the training", lambda: not left(), describe=lambda: str(left())
    )


def test_a_gang_that_does_not_fit_says_which_rank_waits_and_why(stack: Stack) -> None:
    training = stack.create(gang_spec(4, gpus=8))  # no node has 8 GPUs
    waiting = wait_for("the training to say why its ranks wait",
                       lambda: (t := stack.get(training.id)).reason == "Unschedulable" and t,
                       describe=lambda: stack.get(training.id).message)  # fmt: skip
    assert waiting.phase == pb.PHASE_QUEUED
    assert waiting.message.startswith("rank 0 waits: 0/6 nodes are available")
    assert "Insufficient nvidia.com/gpu" in waiting.message
    assert waiting.message.endswith("(4 ranks wait)")
    stack.cancel(training.id)


def test_sigkill_during_gang_restarts_makes_no_attempt_twice_and_loses_none(
    stack: Stack,
) -> None:
    """Six 2-node trainings each lose a rank once (a retryable exit) while
    the controller is killed again and again: each makes exactly its second
    Job, and completes with it."""
    creations = JobCreations(stack.kube, stack.namespace)
    rng = random.Random(20261205)
    # No GPUs: what earlier tests left running must not make these wait.
    ids = [stack.create(gang_spec(2, max_retries=1, gpus=0)).id for _ in range(6)]
    failing = threading.Event()
    failing.set()

    def fail_each_first_attempt() -> None:
        try:  # all at once: each while its first attempt runs
            with ThreadPoolExecutor(len(ids)) as each:
                list(each.map(lambda i: fail_rank(stack, f"train-{i}", 2, 1, 3), ids))
        finally:
            failing.clear()  # the chaos stops, whatever happened

    def chaos() -> int:
        kills = 0
        while failing.is_set() or kills < 4:
            time.sleep(rng.uniform(0.3, 1.5))
            stack.controllers["controller-0"].kill()
            kills += 1
            stack.start_controller("controller-0", **CONTROLLER_ENV)
        return kills

    with ThreadPoolExecutor(2) as pool:
        killer = pool.submit(chaos)
        pool.submit(fail_each_first_attempt).result()
        assert killer.result() >= 4

    def unfinished() -> list[str]:
        return [i for i in ids if stack.get(i).phase not in FINAL]

    wait_for("every training to finish", lambda: not unfinished(), timeout=180,
             describe=lambda: f"{len(unfinished())} unfinished")  # fmt: skip
    done = [stack.get(i) for i in ids]
    assert {(t.phase, t.attempts, t.retries) for t in done} == {(pb.PHASE_COMPLETED, 2, 1)}
    expected = {name for i in ids for name in (f"train-{i}", f"train-{i}-a2")}
    wait_for("the counting watch to see every attempt's Job",
             lambda: expected <= set(creations.first_seen) or creations.error)  # fmt: skip
    created = creations.stop()
    assert creations.error is None
    # Each attempt made once, and no third one.
    assert {n: c for n, c in created.items() if any(i in n for i in ids)} == dict.fromkeys(
        expected, 1
    )
