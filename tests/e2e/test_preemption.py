"""Preemption through Kueue, end to end: team-a borrows the whole cohort
while team-b is idle; a high-priority team-b training takes back its
quota; one of team-a's trainings is preempted (SUSPENDED, Preempted,
InCohortReclamation), waits QUEUED, and completes later, its deadline
counted from its second start. The dashboard's queue panels show it all."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from trainconductor.v1 import training_service_pb2 as pb

from devstack.kueue import Kueue
from devstack.prometheus import Prometheus
from devstack.queues import applied, cluster_queue, drain, local_queue
from devstack.specs import lora_spec
from devstack.stack import Cluster, Stack, running_stack
from devstack.waiting import wait_for
from tests.e2e.test_metrics import dashboard_queries
from tests.support.kwok_pods import pods_running_for

# How long each pod runs: long enough for all of team-a to be running when
# team-b comes, short enough for the test.
RUN_SECONDS = 40
# Longer than one run, shorter than a first start to a completion that
# waited for another training's run in between.
DEADLINE_SECONDS = RUN_SECONDS + 25
FINAL = {pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED}


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, kueue: Kueue, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with running_stack(
        cluster,
        Path(tmp_path_factory.mktemp("stack")),
        env={"TC_QUEUES_ENABLED": "true"},
        controller_env={"TC_QUEUE_POSITION_REFRESH_SECONDS": "0.5"},
    ) as running:
        try:
            yield running
        finally:
            drain(kueue.kube, running.namespace)


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[Prometheus]:
    server = Prometheus(
        stack.log_dir / "prometheus",
        {"train-conductor-controller": f"127.0.0.1:{stack.controllers['controller-0'].http_port}"},
        labels={"namespace": stack.namespace},
    )
    yield server
    server.stop()


@pytest.fixture
def cohort(kueue: Kueue, stack: Stack) -> Iterator[tuple[str, str]]:
    """Two ClusterQueues of 4 GPUs each in a cohort of their own (the local
    cluster's 8), each with a LocalQueue of its name in the stack's
    namespace: (team-a, team-b)."""
    suffix = uuid.uuid4().hex[:6]
    a, b = f"team-a-{suffix}", f"team-b-{suffix}"
    objects = [
        cluster_queue(a, gpus=4, cohort=f"research-{suffix}"),
        cluster_queue(b, gpus=4, cohort=f"research-{suffix}"),
        local_queue(a, stack.namespace, a),
        local_queue(b, stack.namespace, b),
    ]
    with applied(kueue.kube, objects):
        yield a, b
        drain(kueue.kube, stack.namespace)


class Events:
    """Every training's events, as a watch of all trainings delivers them."""

    def __init__(self, stack: Stack) -> None:
        self.by_training: dict[str, list[pb.TrainingEvent]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stream = stack.trainings.WatchTrainings(pb.WatchTrainingsRequest())
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for response in self._stream:
                if response.HasField("event"):
                    with self._lock:
                        self.by_training[response.event.training_id].append(response.event)
        except grpc.RpcError:
            pass  # canceled at the end

    def of(self, training_id: str) -> list[tuple[str, str, str]]:
        """(phase, reason, message) of each of its events, in order."""
        with self._lock:
            return [
                (pb.Phase.Name(e.phase).removeprefix("PHASE_"), e.reason, e.message)
                for e in self.by_training[training_id]
            ]

    def first_seconds(self, training_id: str, phase: pb.Phase.ValueType) -> float:
        """When its first event of `phase` was recorded."""
        with self._lock:
            found = next(e for e in self.by_training[training_id] if e.phase == phase)
        return float(found.time.ToMicroseconds()) / 1e6

    def close(self) -> None:
        self._stream.cancel()
        self._thread.join(timeout=5)


def create(stack: Stack, queue: str, priority: str = "") -> pb.Training:
    spec = lora_spec()
    spec.resources.gpus = 2
    spec.deadline.seconds = DEADLINE_SECONDS
    spec.queue, spec.priority = queue, priority
    return stack.create(spec)


def test_a_high_priority_training_reclaims_borrowed_quota_and_the_preempted_one_completes_later(
    stack: Stack,
    prometheus: Prometheus,
    cohort: tuple[str, str],
    priorities: dict[str, str],
) -> None:
    team_a, team_b = cohort
    events = Events(stack)
    try:
        with pods_running_for(stack.kube, stack.namespace, f"{RUN_SECONDS}s"):
            # team-b is idle: team-a's four 2-GPU trainings take the cohort's 8.
            borrowers = [create(stack, team_a) for _ in range(4)]
            for training in borrowers:
                stack.wait_for_phase(training.id, {pb.PHASE_RUNNING}, timeout=60)
            reclaimer = create(stack, team_b, priorities["top"])

            def preempted() -> list[str]:
                return [
                    t.id
                    for t in borrowers
                    if any(
                        (phase, reason) == ("SUSPENDED", "Preempted")
                        and "InCohortReclamation" in message
                        for phase, reason, message in events.of(t.id)
                    )
                ]

            victims = wait_for(
                "one of team-a's trainings to be preempted in cohort reclamation",
                preempted,
                timeout=60,
                describe=lambda: "\n".join(str(events.of(t.id)[-3:]) for t in borrowers),
            )
            assert len(victims) == 1, victims
            victim = victims[0]
            stack.wait_for_phase(reclaimer.id, {pb.PHASE_RUNNING}, timeout=60)
            for training in [*borrowers, reclaimer]:
                stack.wait_for_phase(training.id, FINAL, timeout=4 * RUN_SECONDS)
    finally:
        events.close()

    # Every one completed: the preempted one ran again, its deadline counted
    # from its second start (from its first, it would have run out).
    for training in [*borrowers, reclaimer]:
        assert stack.get(training.id).phase == pb.PHASE_COMPLETED, stack.get(training.id)
    story = events.of(victim)
    told = "\n".join(map(str, story))
    phases = [phase for phase, _, _ in story]
    preemption = next(
        i
        for i, (phase, reason, _) in enumerate(story)
        if (phase, reason) == ("SUSPENDED", "Preempted")
    )
    assert "RUNNING" in phases[:preemption], told
    queued_again = phases.index("QUEUED", preemption)
    assert "RUNNING" in phases[queued_again:], told
    # Nothing but the preemption suspended it: no glimpse of a suspended Job
    # between an admission and its pods running.
    assert [r for p, r, _ in story if p == "SUSPENDED"] == ["Preempted"], told
    done = stack.get(victim)
    first_start = events.first_seconds(victim, pb.PHASE_RUNNING)
    assert done.finish_time.ToMicroseconds() / 1e6 - first_start > DEADLINE_SECONDS, story
    assert stack.get(reclaimer.id).queue_position == 0

    # The dashboard's queue panels have something to show.
    empty = []
    for title, expr in dashboard_queries():
        if "trainconductor_queue_" not in expr:
            continue
        query = expr.replace("$namespace", stack.namespace).replace("$__rate_interval", "5m")
        if not prometheus.has_data(query, timeout=20):
            empty.append(f"{title}: {query}")
    assert empty == [], "queue panels without data:\n" + "\n".join(empty)
    preemptions = prometheus.value(
        f'sum(trainconductor_queue_preemptions_total{{queue="{team_a}", '
        'reason="InCohortReclamation"})'
    )
    assert preemptions == 1
