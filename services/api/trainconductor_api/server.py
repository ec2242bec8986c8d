"""Builds the API server: services, health, reflection, interceptors, metrics."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from train_conductor.service.training import training_pb2 as legacy_pb
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import progress_service_pb2 as progress_pb
from trainconductor.v1 import progress_service_pb2_grpc as progress_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from trainconductor_api import listeners, metrics
from trainconductor_api.authentication.authenticator import Authenticator, build_authenticator
from trainconductor_api.authentication.errors import AuthenticatorUnavailable
from trainconductor_api.authentication.pod_binding import PodBinding, ReadPod, kubernetes_pods
from trainconductor_api.authentication.token_review import (
    ReviewCall,
    TokenReviewer,
    kubernetes_client,
    kubernetes_review,
)
from trainconductor_api.authorization import Access
from trainconductor_api.generic_handlers import generic_only
from trainconductor_api.health import HealthReporter
from trainconductor_api.interceptors.auth import AuthInterceptor
from trainconductor_api.interceptors.errors import ErrorInterceptor
from trainconductor_api.interceptors.logging import LoggingInterceptor
from trainconductor_api.interceptors.metrics import MetricsInterceptor
from trainconductor_api.interceptors.rate_limit import RateLimitInterceptor
from trainconductor_api.interceptors.tracing import TracingInterceptor
from trainconductor_api.kubeflow_status import KubeflowStatusServer
from trainconductor_api.legacy_service import LegacyTrainConductor
from trainconductor_api.log_stream import LogStreamer, StreamLimits
from trainconductor_api.pod_logs import kubernetes_logs
from trainconductor_api.progress_intake import ProgressIntake
from trainconductor_api.progress_service import ProgressService
from trainconductor_api.reflection import MethodResolvingPool
from trainconductor_api.service import TrainingService
from trainconductor_api.settings import ApiSettings
from trainconductor_api.tls import ReloadingCertificates
from trainconductor_api.token_bucket import TokenBuckets
from trainconductor_api.validation import Limits
from trainconductor_api.watch_slots import WatchSlots
from trainconductor_core.build_info import register_build_info
from trainconductor_core.store import TrainingStore, open_store

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["TrainingService"].full_name,
    legacy_pb.DESCRIPTOR.services_by_name["TrainConductor"].full_name,
    progress_pb.DESCRIPTOR.services_by_name["ProgressService"].full_name,
)
# Authenticates its callers itself: a training pod, by its pod-bound token.
PROGRESS_SERVICE = SERVICE_NAMES[2]
# The calls that make a training, v1 and legacy: the ones rate limited.
CREATE_METHODS = (
    f"/{SERVICE_NAMES[0]}/CreateTraining",
    f"/{SERVICE_NAMES[1]}/Train",
)


@dataclass
class ApiServer:
    # The gRPC port's listeners (grpc_listeners of them: listeners.py).
    servers: list[grpc.aio.Server]
    store: TrainingStore
    health: HealthReporter
    port: int
    settings: ApiSettings
    intake: ProgressIntake | None = None
    kubeflow: KubeflowStatusServer | None = None
    # ProgressService alone on a port of its own (progress_grpc_port).
    progress_servers: list[grpc.aio.Server] = field(default_factory=list)
    progress_port: int = 0
    _health_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for server in (*self.servers, *self.progress_servers):
            await server.start()
        s = self.settings
        if s.kubeflow_status_enabled and self.intake is not None:
            # Its threads hand each report to this loop, where the store is.
            self.kubeflow = KubeflowStatusServer(
                s.grpc_host, s.kubeflow_status_port, self.intake, asyncio.get_running_loop()
            )
            self.kubeflow.start()
        await self.health.probe_once()
        self._health_task = asyncio.create_task(self.health.run(), name="health")
        log.info("serving gRPC", extra={"port": self.port, "services": list(SERVICE_NAMES)})

    async def drain_and_stop(self) -> None:
        """NOT_SERVING first, so load balancers stop sending; then let in-flight
        calls finish within the grace period; then close."""
        await self.health.drain()
        if self.kubeflow is not None:
            await asyncio.to_thread(self.kubeflow.stop)
        # Together: each waits out the same grace period.
        grace = self.settings.drain_seconds
        await asyncio.gather(
            *(server.stop(grace) for server in (*self.progress_servers, *self.servers))
        )
        if self._health_task:
            self._health_task.cancel()
        await self.store.close()


def _configure_progress(store: TrainingStore, s: ApiSettings) -> ProgressIntake:
    return ProgressIntake(
        store,
        _pod_binding(store, s),
        TokenBuckets(s.progress_rate_per_second, s.progress_burst),
        event_interval_seconds=s.progress_event_interval_seconds,
    )


def _configure_services(
    servers: list[grpc.aio.Server], store: TrainingStore, intake: ProgressIntake, s: ApiSettings
) -> None:
    limits = Limits(
        max_gpus=s.max_gpus_per_training,
        allowed_path_prefixes=s.allowed_path_prefixes,
        max_nodes=s.max_nodes_per_training,
        max_retries=s.max_retries,
        default_max_retries=s.default_max_retries,
    )
    access = Access.of(s.admin_groups)
    # One of each, shared by the listeners: watch and log slots are counted
    # per process.
    training = TrainingService(
        store,
        limits,
        access,
        watch_poll_ms=s.watch_poll_ms,
        watch_slots=WatchSlots(s.watch_limit),
        # Room left for the rest of the response and gRPC's framing.
        response_bytes=s.max_message_bytes * 3 // 4,
        queues=s.queue_policy,
        logs=_log_streamer(store, s),
        log_slots=WatchSlots(s.log_streams_max),
    )
    legacy = LegacyTrainConductor(store, limits, access, s.queue_policy)
    progress = ProgressService(intake)
    for server in servers:
        generic = generic_only(server)
        pb_grpc.add_TrainingServiceServicer_to_server(training, generic)
        legacy_grpc.add_TrainConductorServicer_to_server(legacy, generic)
        progress_grpc.add_ProgressServiceServicer_to_server(progress, generic)


def _pod_binding(store: TrainingStore, s: ApiSettings) -> PodBinding | None:
    """How a progress report's token names its training: through TokenReview
    and the pod it is bound to; none under auth mode "none"."""
    if not s.authentication_enabled:
        return None

    async def job_of_training(training_id: str) -> str:
        return (await store.get(training_id)).job_name

    # Made at the first report: an API that no pod reports to (users'
    # static tokens, no cluster configured) starts without the cluster.
    @functools.cache
    def cluster() -> tuple[ReviewCall, ReadPod]:
        try:
            review = kubernetes_review(s, audience=s.progress_token_audience)
            return review, kubernetes_pods(kubernetes_client(s), s.token_review_timeout_seconds)
        except Exception as err:  # noqa: BLE001 - any failure of the config: not now
            log.error(
                "progress reports can not be checked: no Kubernetes configuration",
                extra={"error": str(err)[:300]},
            )
            raise AuthenticatorUnavailable("no Kubernetes configuration") from None

    reviewer = TokenReviewer(
        lambda token: cluster()[0](token), cache_seconds=s.progress_token_cache_seconds
    )
    return PodBinding(
        reviewer,
        lambda namespace, name: cluster()[1](namespace, name),
        job_of_training,
        namespace=s.trainings_namespace,
    )


def _log_streamer(store: TrainingStore, s: ApiSettings) -> LogStreamer:
    """Logs from the trainings' namespace when one is set; else only the
    ends kept with finished trainings."""
    limits = StreamLimits(
        max_line_bytes=s.log_line_max_bytes,
        lines_per_second=s.log_lines_per_second,
        buffered_batches=s.log_buffered_batches,
        poll_seconds=s.log_poll_seconds,
    )
    kube = kubernetes_logs(s) if s.pod_logs_enabled else None
    return LogStreamer(store, kube, limits)


def _configure_health(
    servers: list[grpc.aio.Server], store: TrainingStore, s: ApiSettings
) -> HealthReporter:
    servicer = health.aio.HealthServicer()
    for server in servers:
        health_pb2_grpc.add_HealthServicer_to_server(servicer, generic_only(server))
    return HealthReporter(servicer, store, SERVICE_NAMES, interval_seconds=s.health_probe_seconds)


def _configure_reflection(servers: list[grpc.aio.Server]) -> None:
    names = (
        *SERVICE_NAMES,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    # Default(): the pool the generated modules registered their files in.
    pool = MethodResolvingPool(descriptor_pool.Default())
    for server in servers:
        # The servicer only calls the pool's Find* methods, which this one has.
        # Its one method stays registered: reflection picks its asyncio
        # servicer by the server's class.
        reflection.enable_server_reflection(names, server, pool=pool)  # type: ignore[arg-type]


def _interceptors(
    tracing: bool, authenticator: Authenticator, s: ApiSettings
) -> list[grpc.aio.ServerInterceptor]:
    # Outermost first: the tracing span covers the rest, so access log lines
    # carry its ids (a call it does not record runs with instrumentation
    # suppressed: tracing.py). Metrics and the access log see the status the
    # error interceptor chose, refusals by auth and rate limit included. Auth
    # sits inside the error interceptor (a failing authenticator is a status,
    # not a traceback) and outside the rate limit, whose buckets are per
    # identity.
    chain: list[grpc.aio.ServerInterceptor] = [
        MetricsInterceptor(),
        LoggingInterceptor(),
        ErrorInterceptor(),
        AuthInterceptor(authenticator, self_authenticated=frozenset({PROGRESS_SERVICE})),
    ]
    if s.create_rate_per_second > 0:
        buckets = TokenBuckets(s.create_rate_per_second, s.create_burst)
        chain.append(RateLimitInterceptor(buckets, CREATE_METHODS))
    if tracing:
        chain.insert(0, TracingInterceptor())
    return chain


def _configure_port(servers: list[grpc.aio.Server], s: ApiSettings) -> int:
    if s.tls_cert_file is None or s.tls_key_file is None:
        return listeners.bind(servers, s.grpc_host, s.grpc_port)
    cert, key, client_ca = s.tls_cert_file, s.tls_key_file, s.tls_client_ca_file

    def credentials() -> grpc.ServerCredentials:
        # Each listener reads the files for itself: one that saw a rotation
        # first would otherwise leave the others on the old certificate.
        return ReloadingCertificates(cert, key, client_ca).server_credentials()

    return listeners.bind(servers, s.grpc_host, s.grpc_port, credentials)


def build_server(
    settings: ApiSettings, *, serve_metrics: bool = True, tracing: bool = False
) -> ApiServer:
    store = open_store(
        settings,
        request_id_ttl_seconds=settings.request_id_ttl_seconds,
        max_active_per_owner=settings.max_active_trainings_per_owner,
    )
    servers = _listeners(_interceptors(tracing, build_authenticator(settings), settings), settings)
    intake = _configure_progress(store, settings)
    _configure_services(servers, store, intake, settings)
    health_reporter = _configure_health(servers, store, settings)
    _configure_reflection(servers)
    port = _configure_port(servers, settings)
    progress_servers, progress_port = _configure_progress_port(intake, tracing, settings)
    if serve_metrics:
        register_build_info(metrics.registry, "api")
        start_http_server(settings.http_port, registry=metrics.registry)
    return ApiServer(
        servers,
        store,
        health_reporter,
        port,
        settings,
        intake,
        progress_servers=progress_servers,
        progress_port=progress_port,
    )


def _listeners(chain: list[grpc.aio.ServerInterceptor], s: ApiSettings) -> list[grpc.aio.Server]:
    """The servers of one port (listeners.py), sharing one chain of
    interceptors: its rate limit's buckets count per process."""
    options = _server_options(s)
    return [grpc.aio.server(interceptors=chain, options=options) for _ in range(s.grpc_listeners)]


def _server_options(s: ApiSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", s.max_message_bytes),
        ("grpc.max_send_message_length", s.max_message_bytes),
        ("grpc.max_connection_age_ms", int(s.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(s.drain_seconds * 1000)),
        listeners.reuse_port_option(s.grpc_listeners),
        # Clients keep a quiet watch alive with a ping every 30 s (tcctl,
        # the client library); gRPC's default minimum, 5 minutes, would
        # answer them with GOAWAY "too_many_pings".
        ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
    ]


def _configure_progress_port(
    intake: ProgressIntake, tracing: bool, s: ApiSettings
) -> tuple[list[grpc.aio.Server], int]:
    """ProgressService alone on progress_grpc_port, without TLS: the
    training pods reach it where the gRPC port asks for client certificates
    they do not have. What a report carries is a short-lived token bound to
    one pod and of an audience nothing else takes, worth that training's
    progress only."""
    if s.progress_grpc_port is None:
        return [], 0
    chain: list[grpc.aio.ServerInterceptor] = [
        MetricsInterceptor(),
        LoggingInterceptor(),
        ErrorInterceptor(),
    ]
    if tracing:
        chain.insert(0, TracingInterceptor())
    servers = _listeners(chain, s)
    service = ProgressService(intake)
    for server in servers:
        progress_grpc.add_ProgressServiceServicer_to_server(service, generic_only(server))
    return servers, listeners.bind(servers, s.grpc_host, s.progress_grpc_port)
