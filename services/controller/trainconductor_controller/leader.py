"""Leader election on a `coordination.k8s.io/v1` Lease, with the Kubernetes
client's own elector, run in a thread of its own.

Only the leader acts. Losing the Lease is final for this process: the
elector reports it and the controller exits at once, so no second replica
ever acts on a stale belief that it still leads; Kubernetes restarts it as
a follower. A leader that is stopped (SIGTERM: a rolling update, a drain)
gives the Lease up, as client-go's ReleaseOnCancel does, so that a follower
takes over on its next try instead of after the lease duration.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
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
        # Held around every write of the Lease; once `released`, no renewal
        # can land after the release and take the Lease back.
        self.writing = threading.Lock()
        self.released = False

    def get(self, name: str, namespace: str) -> tuple[bool, object]:
        try:
            result: tuple[bool, object] = super().get(name, namespace)  # type: ignore[no-untyped-call]
            return result
        except (urllib3.exceptions.HTTPError, OSError) as err:
            log.warning("could not read the Lease", extra={"error": type(err).__name__})
            return False, err

    def create(self, name: str, namespace: str, election_record: object) -> bool:
        with self.writing:
            if self.released:
                return False
            try:
                return bool(super().create(name, namespace, election_record))  # type: ignore[no-untyped-call]
            except (urllib3.exceptions.HTTPError, OSError):
                return False

    def update(self, name: str, namespace: str, updated_record: object) -> bool:
        with self.writing:
            if self.released:
                return False
            try:
                return bool(super().update(name, namespace, updated_record))  # type: ignore[no-untyped-call]
            except (urllib3.exceptions.HTTPError, OSError):
                return False

    def release(self) -> bool:
        """Empties the Lease if this identity holds it; True when it did."""
        api: client.CoordinationV1Api = self.api_instance
        with self.writing:
            self.released = True
            lease = api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return False
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = datetime.now(UTC)
            # The read's resourceVersion: a Lease someone else wrote meanwhile
            # is not overwritten (409).
            api.replace_namespaced_lease(self.name, self.namespace, lease)
            return True


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
        self._lock = lock
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

    def release(self) -> None:
        """Gives the Lease up when stopping; the elector renews it no more.
        Blocks on the API server: call it from a thread."""
        if not self._leading.is_set():
            return
        self._leading.clear()  # first: the elector's end is no loss now
        metrics.LEADER.set(0)
        try:
            released = self._lock.release()
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
            log.warning(
                "could not release the Lease; a follower takes over when it expires",
                extra={"error": str(err)[:300]},
            )
            return
        if released:
            log.info("released the Lease", extra={"identity": self.identity})

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
