"""Every field of the v1 `CreateTrainingRequest`, plausible and hostile,
through real calls to the API over the real Redis: never INTERNAL or
UNKNOWN; a refusal names request fields and stores nothing; an accepted
spec comes back unchanged and holds nothing unsafe."""

from __future__ import annotations

import math

import grpc
from hypothesis import example, given
from trainconductor.v1 import training_service_pb2 as pb
from trainconductor.v1 import training_service_pb2_grpc as pb_grpc

from devstack.specs import lora_spec
from tests.property.examples import KeySpace, Tally, examples
from tests.property.refusals import refused_fields
from tests.property.requests import create_training_requests
from tests.property.safety import unsafe_values

EXAMPLES = 2000


def every_field_wrong_at_length() -> pb.CreateTrainingRequest:
    """The most violations, with the longest field names, that a small
    request can carry: the list of them must still reach the client."""
    spec = lora_spec()
    spec.parameters.learning_rate = math.nan
    spec.parameters.lora.target_modules[:] = ["é" * 129] * 64
    for i in range(32):
        spec.labels[f"{'p' * 240}.example{i:03d}/{'n' * 63}"] = "-"
    return pb.CreateTrainingRequest(spec=spec, request_id="a/b")


def a_label_key_without_prefix_before_its_slash() -> pb.CreateTrainingRequest:
    return pb.CreateTrainingRequest(spec=lora_spec(**{"/team": "ml"}))


def a_queue_past_the_size_of_a_spec() -> pb.CreateTrainingRequest:
    """Refused for its queue, not as a spec too large to carry."""
    spec = lora_spec()
    spec.queue = "\U0001f600" * 70_000
    return pb.CreateTrainingRequest(spec=spec)


@examples(EXAMPLES)
@example(create=every_field_wrong_at_length())
@example(create=a_queue_past_the_size_of_a_spec())
@example(create=a_label_key_without_prefix_before_its_slash())
@given(create=create_training_requests())
async def test_a_create_is_refused_cleanly_or_round_trips_unchanged(
    trainings: pb_grpc.TrainingServiceAsyncStub,
    key_space: KeySpace,
    tally: Tally,
    create: pb.CreateTrainingRequest,
) -> None:
    with tally.example():
        try:
            tally.count(await created_and_read_back(trainings, key_space, create))
        finally:
            await key_space.clear()  # a failing example leaves nothing to the next


async def created_and_read_back(
    trainings: pb_grpc.TrainingServiceAsyncStub,
    key_space: KeySpace,
    create: pb.CreateTrainingRequest,
) -> bool:
    """Whether `create` was accepted; either way, checks the answer."""
    try:
        response = await trainings.CreateTraining(create, timeout=30)
    except grpc.aio.AioRpcError as err:
        fields = refused_fields(err, create)
        assert all(f == "request_id" or f.startswith("spec.") for f in fields), fields
        assert await key_space.keys() == [], "a refused request stored something"
        return False

    # What the server parsed: floats as float32, as the wire carries them.
    sent = pb.TrainingSpec.FromString(create.spec.SerializeToString())
    assert unsafe_values(sent) == []
    training = response.training
    assert training.spec == sent
    got = await trainings.GetTraining(pb.GetTrainingRequest(id=training.id), timeout=30)
    assert got.training.spec == sent
    if create.request_id:
        again = await trainings.CreateTraining(create, timeout=30)
        assert again.training.id == training.id
    return True
