"""Where a new training waits: its spec's queue and priority, checked, or
the operator's defaults (per group of the owner, then for all)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from trainconductor.v1 import training_service_pb2 as pb

from devstack.specs import lora_spec
from trainconductor_api.identity import Identity
from trainconductor_api.queueing import Placement, QueuePolicy
from trainconductor_api.settings import ApiSettings

ADA = Identity("ada", frozenset({"nlp", "ml"}), "static-token")
BOB = Identity("bob", frozenset({"vision"}), "static-token")
POLICY = QueuePolicy.of(
    enabled=True,
    default_queue="shared",
    default_priority="low",
    group_queues={"vision": "team-b", "ml": "team-a", "nlp": "team-nlp"},
)


def spec(queue: str = "", priority: str = "") -> pb.TrainingSpec:
    value = lora_spec()
    value.queue, value.priority = queue, priority
    return value


@pytest.mark.parametrize(
    ("policy", "given", "identity", "placed"),
    [
        pytest.param(POLICY, spec("team-x", "high"), ADA, Placement("team-x", "high"),
                     id="the spec's queue and priority win over every default"),
        pytest.param(POLICY, spec(), ADA, Placement("team-a", "low"),
                     id="the first listed of the owner's groups gives the queue"),
        pytest.param(POLICY, spec(), BOB, Placement("team-b", "low"),
                     id="another group, another queue"),
        pytest.param(POLICY, spec(), Identity("eve"), Placement("shared", "low"),
                     id="an owner in no listed group gets the default queue"),
        pytest.param(QueuePolicy.of(enabled=True), spec(), ADA, Placement("", ""),
                     id="no default queue: the training runs without a queue"),
        pytest.param(QueuePolicy(), spec(), ADA, Placement("", ""),
                     id="queues off: never a queue"),
    ],
)  # fmt: skip
def test_placement(
    policy: QueuePolicy, given: pb.TrainingSpec, identity: Identity, placed: Placement
) -> None:
    assert policy.place(given, identity) == placed


@pytest.mark.parametrize(
    ("policy", "given", "fields"),
    [
        pytest.param(QueuePolicy(), spec("team-a"), ["spec.queue"],
                     id="queues off: a queue is refused, naming the field"),
        pytest.param(QueuePolicy(), spec("team-a", "high"), ["spec.queue", "spec.priority"],
                     id="queues off: both fields are named"),
        pytest.param(POLICY, spec("Team_A"), ["spec.queue"], id="not a DNS-1123 label"),
        pytest.param(POLICY, spec("a" * 64), ["spec.queue"], id="a queue name past 63"),
        pytest.param(POLICY, spec("team-a", "-high"), ["spec.priority"],
                     id="not a priority class name"),
        pytest.param(QueuePolicy.of(enabled=True), spec(priority="high"), ["spec.priority"],
                     id="a priority without any queue to order"),
        pytest.param(POLICY, spec("team-a", "high.gpu"), [], id="valid names pass"),
        pytest.param(QueuePolicy(), spec(), [], id="queues off: empty fields pass"),
    ],
)  # fmt: skip
def test_violations_name_the_field(
    policy: QueuePolicy, given: pb.TrainingSpec, fields: list[str]
) -> None:
    assert [v.field for v in policy.violations(given, ADA)] == fields


def test_the_refusal_without_queues_says_why() -> None:
    (violation,) = QueuePolicy().violations(spec("team-a"), ADA)
    assert "runs without queues" in violation.description


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param({"default_queue": "team-a"}, "need queues_enabled",
                     id="a default queue without queues"),
        pytest.param({"queues_enabled": True, "default_queue": "Team A"}, "not a LocalQueue",
                     id="a default queue that is no queue name"),
        pytest.param({"queues_enabled": True, "group_default_queues": {"ml": "a_b"}},
                     "not a LocalQueue", id="a group's queue that is no queue name"),
        pytest.param({"queues_enabled": True, "default_priority": "HIGH"},
                     "WorkloadPriorityClass", id="a default priority that is no class name"),
    ],
)  # fmt: skip
def test_queue_settings_that_can_not_work_fail_at_start(
    values: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ApiSettings(**values)  # type: ignore[arg-type]
