"""One fuzz input: bytes decoded as each API's create request, then
validated and translated the way the API does it.

Pure and free of atheris, so the seeds and the checks also run without the
fuzzer. The only exception an input may raise is protobuf's `DecodeError`
(bytes that are no such message); anything else is a crash.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from train_conductor.service.training import training_pb2 as legacy
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_api.legacy import legacy_violations, spec_from_legacy
from trainconductor_api.unknown_fields import unknown_field_violations
from trainconductor_api.validation import Limits, Violation, validate_request_id, validate_spec
from trainconductor_core.record import decode_spec, encode_spec

# The defaults, and an operator who restricts paths and allows no GPU.
LIMITS = (Limits(), Limits(max_gpus=0, allowed_path_prefixes=("/mnt/", "s3://models/")))


def check(data: bytes) -> None:
    try:
        create = pb.CreateTrainingRequest.FromString(data)
    except DecodeError:
        pass
    else:
        check_create(create)
    try:
        train = legacy.TrainingRequest.FromString(data)
    except DecodeError:
        pass
    else:
        check_train(train)


def check_create(create: pb.CreateTrainingRequest) -> None:
    _check_violations(unknown_field_violations(create))
    for limits in LIMITS:
        violations = validate_request_id(create.request_id) + validate_spec(create.spec, limits)
        _check_violations(violations)
        if not violations:
            _check_stored_unchanged(create.spec)


def check_train(train: legacy.TrainingRequest) -> None:
    _check_violations(unknown_field_violations(train))
    translation = spec_from_legacy(train)
    for limits in LIMITS:
        named = legacy_violations(translation, limits)
        _check_violations(named)
        assert not any(v.field.startswith("spec.") for v in named), named
        if not named:
            _check_stored_unchanged(translation.spec)


def _check_violations(violations: list[Violation]) -> None:
    for v in violations:
        # They travel in a google.rpc.BadRequest: proto strings, UTF-8.
        v.field.encode()
        v.description.encode()
        assert v.field, v
        assert v.description, v


def _check_stored_unchanged(spec: pb.TrainingSpec) -> None:
    """An accepted spec reads back from the store's encoding as it was."""
    stored = encode_spec(spec)
    assert encode_spec(decode_spec(stored)) == stored
