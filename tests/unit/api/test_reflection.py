"""Reflection's pool finds the file of every symbol a tool may ask for,
methods included, and still says "not found" for names that do not exist."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pool
from train_conductor.service.training import training_pb2 as legacy_pb
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_api.reflection import MethodResolvingPool

V1_FILE = pb.DESCRIPTOR.name
LEGACY_FILE = legacy_pb.DESCRIPTOR.name


@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        pytest.param("trainconductor.v1.TrainingService.CreateTraining", V1_FILE, id="a v1 method"),
        pytest.param(
            "trainconductor.v1.TrainingService.WatchTrainings", V1_FILE, id="a streaming method"
        ),
        pytest.param(
            "train_conductor.service.training.TrainConductor.Train",
            LEGACY_FILE,
            id="a legacy method",
        ),
        pytest.param("trainconductor.v1.TrainingService", V1_FILE, id="a service"),
        pytest.param("trainconductor.v1.CreateTrainingRequest", V1_FILE, id="a message"),
        pytest.param("trainconductor.v1.Phase", V1_FILE, id="an enum"),
        pytest.param("trainconductor.v1.Training.id", V1_FILE, id="a field"),
    ],
)
def test_a_symbol_is_found_in_its_file(symbol: str, file: str) -> None:
    pool = MethodResolvingPool(descriptor_pool.Default())
    assert pool.FindFileContainingSymbol(symbol).name == file


@pytest.mark.parametrize(
    "symbol",
    [
        pytest.param("trainconductor.v1.TrainingService.Nope", id="a method the service lacks"),
        pytest.param("trainconductor.v1.NoSuchService.CreateTraining", id="an unknown service"),
        pytest.param(
            "trainconductor.v1.CreateTrainingRequest.CreateTraining",
            id="a message is not a service",
        ),
        pytest.param("trainconductor.v1", id="a package"),
        pytest.param("", id="an empty name"),
    ],
)
def test_an_unknown_symbol_is_not_found(symbol: str) -> None:
    pool = MethodResolvingPool(descriptor_pool.Default())
    with pytest.raises(KeyError):
        pool.FindFileContainingSymbol(symbol)


def test_files_are_still_found_by_name() -> None:
    pool = MethodResolvingPool(descriptor_pool.Default())
    assert pool.FindFileByName(V1_FILE).name == V1_FILE
