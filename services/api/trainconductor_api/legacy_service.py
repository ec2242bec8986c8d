"""The legacy `TrainConductor` service, served over the same store as v1.

Its contract is frozen: a field number it does not know comes from a client
of another contract, and is refused rather than ignored (unknown_fields.py).
"""

from __future__ import annotations

import grpc
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc

from trainconductor_api import metrics
from trainconductor_api.authorization import Access
from trainconductor_api.identity import current_identity
from trainconductor_api.legacy import legacy_violations, spec_from_legacy, status_to_legacy
from trainconductor_api.queueing import QueuePolicy
from trainconductor_api.status import abort_invalid, check_training_id, refuse_unknown_fields
from trainconductor_api.submission import call_trace_context, server_request_id
from trainconductor_api.unknown_fields import unknown_field_violations
from trainconductor_api.validation import Limits
from trainconductor_api.visibility import visible_training
from trainconductor_core.logs import training_id_var
from trainconductor_core.record import TrainingRecord
from trainconductor_core.store import TrainingStore


class LegacyTrainConductor(legacy_grpc.TrainConductorServicer):
    def __init__(
        self,
        store: TrainingStore,
        limits: Limits,
        access: Access,
        queues: QueuePolicy | None = None,
    ) -> None:
        """`queues`: where a training waits by default (the legacy contract
        names no queue, so its trainings go where the operator's defaults say)."""
        self._store = store
        self._limits = limits
        self._access = access
        self._queues = queues or QueuePolicy()

    async def _visible(self, training_id: str) -> TrainingRecord:
        return await visible_training(self._store, self._access, training_id)

    async def Train(
        self,
        request: legacy.TrainingRequest,
        context: grpc.aio.ServicerContext[legacy.TrainingRequest, legacy.TrainingJob],
    ) -> legacy.TrainingJob:
        translation = spec_from_legacy(request)
        violations = unknown_field_violations(request) or legacy_violations(
            translation, self._limits
        )
        if violations:
            metrics.REJECTED.inc()
            await abort_invalid(context, violations)
        identity = current_identity()
        placement = self._queues.place(translation.spec, identity)
        record, _ = await self._store.create(
            translation.spec,
            owner=identity.user,
            request_id=server_request_id(),
            trace_context=call_trace_context(),
            queue=placement.queue,
            priority=placement.priority,
            # The legacy contract names no budget, and runs on one node.
            max_retries=self._limits.default_max_retries,
        )
        training_id_var.set(record.id)  # for the access log line
        metrics.CREATED.inc()
        return legacy.TrainingJob(training_id=record.id, model_name=record.spec.model_name)

    async def GetTrainingStatus(
        self,
        request: legacy.TrainingInfoRequest,
        context: grpc.aio.ServicerContext[
            legacy.TrainingInfoRequest, legacy.TrainingStatusResponse
        ],
    ) -> legacy.TrainingStatusResponse:
        await refuse_unknown_fields(context, request)
        await check_training_id(context, request.training_id, "training_id")
        return status_to_legacy(await self._visible(request.training_id))

    async def CancelTraining(
        self,
        request: legacy.TrainingInfoRequest,
        context: grpc.aio.ServicerContext[
            legacy.TrainingInfoRequest, legacy.TrainingStatusResponse
        ],
    ) -> legacy.TrainingStatusResponse:
        await refuse_unknown_fields(context, request)
        await check_training_id(context, request.training_id, "training_id")
        await self._visible(request.training_id)
        record, _ = await self._store.cancel(request.training_id)
        return status_to_legacy(record)
