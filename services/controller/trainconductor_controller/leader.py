"""Leader election on a `coordination.k8s.io/v1` Lease, with the Kubernetes
client's own elector, run in a thread of its own.

Only the leader acts. Losing the Lease is final for this process: the
elector reports it and the controller exits at once, so no second replica
ever acts on a stale belief that it still leads; Kubernetes restarts it as
a follower.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import urllib3
from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from trainconductor_controller import metrics
from trainconductor_controller.settings import ControllerSettings

log = logging.getLogger(__name__)


class _LeaseLock(LeaseLock):
    """The client's LeaseLock, except that an unreachable API server is a
    failed attempt (retried until the renew deadline) instead of an exception
    that ends the election at once: without this, a blip of the API server
    costs the leader its leadership."""

    def __init__(self, name: str, namespace: str, identity: str) -> None:
        super().__init__(name, namespace, identity)  # type: ignore[no-untyped-call]

    def get(self, name: str, namespace: str) -> tuple[bool, object]:
        try:
            result: tuple[bool, object] = super().get(name, namespace)  # type: ignore[no-untyped-call]
            return result
        except (urllib3.exceptions.HTTPError, OSError) as err:
            log.warning("could not read the Lease", extra={"error": type(err).__name__})
            return False, err

    def create(self, name: str, namespace: str, election_record: object) -> bool:
        try:
            return bool(super().create(name, namespace, election_record))  # type: ignore[no-untyped-call]
        except (urllib3.exceptions.HTTPError, OSError):
            return False

    def update(self, name: str, namespace: str, updated_record: object) -> bool:
        try:
            return bool(super().update(name, namespace, updated_record))  # type: ignore[no-untyped-call]
        except (urllib3.exceptions.HTTPError, OSError):
            return False


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        settings: ControllerSettings,
        *,
        on_started: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        lock = _LeaseLock(settings.lease_name, settings.lease_namespace, settings.identity)
        lock.api_instance = client.CoordinationV1Api(api)  # not the global default client
        self._leading = threading.Event()
        self._on_started = on_started
        self._on_lost = on_lost
        self._config = electionconfig.Config(
            lock,
            lease_duration=settings.lease_duration_seconds,
            renew_deadline=settings.renew_deadline_seconds,
            retry_period=settings.retry_period_seconds,
            onstarted_leading=self._started,
            onstopped_leading=self._stopped,
        )
        self.identity = settings.identity

    def is_leader(self) -> bool:
        return self._leading.is_set()

    def start(self) -> None:
        election = leaderelection.LeaderElection(self._config)
        threading.Thread(
            target=self._run, args=(election,), name="leader-election", daemon=True
        ).start()

    def _run(self, election: leaderelection.LeaderElection) -> None:
        try:
            election.run()
        finally:
            # run() returns only when leadership ended (or never began).
            self._stopped()

    def _started(self) -> None:
        if self._leading.is_set():
            return
        self._leading.set()
        metrics.LEADER.set(1)
        metrics.LEADER_TRANSITIONS.inc()
        log.info("became leader", extra={"identity": self.identity})
        self._on_started()

    def _stopped(self) -> None:
        if not self._leading.is_set():
            return
        self._leading.clear()
        metrics.LEADER.set(0)
        log.warning("lost the Lease; stopping", extra={"identity": self.identity})
        self._on_lost()
