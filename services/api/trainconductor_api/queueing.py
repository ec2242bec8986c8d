"""Where a new training waits for quota: the Kueue LocalQueue and the
WorkloadPriorityClass its spec names, or the operator's defaults. Pure.

Names are checked for their syntax only: whether the queue exists is
Kueue's to say, and the controller tells it on the training
(QueueUnavailable) as Kueue sees it, which may change after the create.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_api.identity import Identity
from trainconductor_api.validation import MAX_NAME, Violation

# A LocalQueue's name goes on the Job as a label value: a DNS-1123 label
# (at most 63 characters) is both a valid object name and a label value.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A WorkloadPriorityClass is named by a DNS-1123 subdomain; as a label value
# it is held to 63 characters.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_QUEUE_NAME = 63


def is_queue_name(name: str) -> bool:
    return len(name) <= MAX_QUEUE_NAME and bool(_DNS_LABEL.fullmatch(name))


def is_priority_name(name: str) -> bool:
    return len(name) <= MAX_QUEUE_NAME and bool(_DNS_SUBDOMAIN.fullmatch(name))


@dataclass(frozen=True)
class Placement:
    queue: str
    priority: str


@dataclass(frozen=True)
class QueuePolicy:
    """`enabled`: the installation runs Kueue and queues its trainings'
    Jobs; `group_queues`: the default queue of each group of owners, the
    first of the owner's groups in this order winning; `default_queue` and
    `default_priority` for everyone else."""

    enabled: bool = False
    default_queue: str = ""
    default_priority: str = ""
    group_queues: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        *,
        enabled: bool,
        default_queue: str = "",
        default_priority: str = "",
        group_queues: Mapping[str, str] | None = None,
    ) -> QueuePolicy:
        return cls(enabled, default_queue, default_priority, tuple((group_queues or {}).items()))

    def violations(
        self, spec: pb.TrainingSpec, identity: Identity, prefix: str = "spec."
    ) -> list[Violation]:
        return list(self._violations(spec, identity, prefix))

    def _violations(
        self, spec: pb.TrainingSpec, identity: Identity, prefix: str
    ) -> Iterator[Violation]:
        # A name longer than MAX_NAME is refused by the spec's validation
        # and not looked at again here.
        if not self.enabled:
            for name in ("queue", "priority"):
                if 0 < len(getattr(spec, name)) <= MAX_NAME:
                    yield Violation(
                        prefix + name,
                        "is not taken: this installation runs without queues; leave it empty",
                    )
            return
        if 0 < len(spec.queue) <= MAX_NAME and not is_queue_name(spec.queue):
            yield Violation(
                prefix + "queue",
                f"must be a LocalQueue name: at most {MAX_QUEUE_NAME} characters of a-z, 0-9 "
                "and -, starting and ending with a letter or digit",
            )
        priority = 0 < len(spec.priority) <= MAX_NAME
        if priority and not is_priority_name(spec.priority):
            yield Violation(
                prefix + "priority",
                f"must be a WorkloadPriorityClass name: at most {MAX_QUEUE_NAME} characters "
                "of a-z, 0-9, - and ., each dot-separated part starting and ending with a "
                "letter or digit",
            )
        elif priority and not self.place(spec, identity).queue:
            yield Violation(
                prefix + "priority",
                "orders a queue, and this training has none: name one in queue (no default "
                "queue is set for you)",
            )

    def place(self, spec: pb.TrainingSpec, identity: Identity) -> Placement:
        """The queue and priority of a training of `identity` (a valid spec)."""
        if not self.enabled:
            return Placement("", "")
        queue = spec.queue or next(
            (q for group, q in self.group_queues if group in identity.groups), self.default_queue
        )
        return Placement(queue, spec.priority or (self.default_priority if queue else ""))
