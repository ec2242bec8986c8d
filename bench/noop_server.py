"""The baseline: a bare grpc.aio server of the same services (v1 and the
legacy contract) that answers at once, with no validation, no store, no
interceptors. It listens as the API does, with as many servers on its port
(TC_GRPC_LISTENERS, the API's default when unset), each given its services
as generic handlers as the API's are, so that a ratio to it measures the
work of a call, not how calls are taken.

    TC_GRPC_PORT=PORT python -m bench.noop_server
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import grpc
from train_conductor.service.training import training_pb2 as legacy
from train_conductor.service.training import training_pb2_grpc as legacy_grpc
from trainconductor.v1 import progress_service_pb2 as ppb
from trainconductor.v1 import progress_service_pb2_grpc as ppb_grpc
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from trainconductor_api.generic_handlers import generic_only
from trainconductor_api.listeners import bind, reuse_port_option
from trainconductor_api.settings import ApiSettings

_TRAINING = pb.Training(id="0" * 20, spec=lora_spec(), phase=pb.PHASE_PENDING)


class NoopTrainingService(pb_grpc.TrainingServiceServicer):
    async def CreateTraining(
        self, request: pb.CreateTrainingRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.CreateTrainingResponse:
        return pb.CreateTrainingResponse(training=_TRAINING)

    async def GetTraining(
        self, request: pb.GetTrainingRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.GetTrainingResponse:
        return pb.GetTrainingResponse(training=_TRAINING)

    async def ListTrainings(
        self, request: pb.ListTrainingsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.ListTrainingsResponse:
        return pb.ListTrainingsResponse()

    async def CancelTraining(
        self, request: pb.CancelTrainingRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.CancelTrainingResponse:
        return pb.CancelTrainingResponse(training=_TRAINING)

    async def HoldTraining(
        self, request: pb.HoldTrainingRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.HoldTrainingResponse:
        return pb.HoldTrainingResponse(training=_TRAINING)

    async def ReleaseTraining(
        self, request: pb.ReleaseTrainingRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.ReleaseTrainingResponse:
        return pb.ReleaseTrainingResponse(training=_TRAINING)

    async def WatchTraining(
        self, request: pb.WatchTrainingRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.WatchTrainingResponse]:
        yield pb.WatchTrainingResponse()

    async def WatchTrainings(
        self, request: pb.WatchTrainingsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.WatchTrainingsResponse]:
        yield pb.WatchTrainingsResponse()

    async def StreamTrainingLogs(
        self,
        request: pb.StreamTrainingLogsRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> AsyncIterator[pb.StreamTrainingLogsResponse]:
        yield pb.StreamTrainingLogsResponse()


class NoopProgressService(ppb_grpc.ProgressServiceServicer):
    async def ReportProgress(
        self, request: ppb.ReportProgressRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> ppb.ReportProgressResponse:
        return ppb.ReportProgressResponse(
            training_id=request.training_id, progress=request.progress
        )


_STATUS = legacy.TrainingStatusResponse(training_id="0" * 20, state=legacy.PENDING)


class NoopTrainConductor(legacy_grpc.TrainConductorServicer):
    async def Train(
        self, request: legacy.TrainingRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> legacy.TrainingJob:
        return legacy.TrainingJob(training_id="0" * 20, model_name=request.model_name)

    async def GetTrainingStatus(
        self, request: legacy.TrainingInfoRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> legacy.TrainingStatusResponse:
        return _STATUS

    async def CancelTraining(
        self, request: legacy.TrainingInfoRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> legacy.TrainingStatusResponse:
        return _STATUS


async def serve(port: int, listeners: int) -> None:
    servers = [grpc.aio.server(options=[reuse_port_option(listeners)]) for _ in range(listeners)]
    for server in servers:
        # Given as the API gives its services (generic_handlers.py): which
        # way grpc finds a method is how calls are taken, not their work.
        generic = generic_only(server)
        pb_grpc.add_TrainingServiceServicer_to_server(NoopTrainingService(), generic)
        legacy_grpc.add_TrainConductorServicer_to_server(NoopTrainConductor(), generic)
        ppb_grpc.add_ProgressServiceServicer_to_server(NoopProgressService(), generic)
    bind(servers, "127.0.0.1", port)
    for server in servers:
        await server.start()
    await servers[0].wait_for_termination()


if __name__ == "__main__":
    # The port and the listeners come as the API's do, so both start the same way.
    default = ApiSettings.model_fields["grpc_listeners"].default
    listeners = int(os.environ.get("TC_GRPC_LISTENERS") or default)
    asyncio.run(serve(int(os.environ.get("TC_GRPC_PORT") or sys.argv[1]), listeners))
