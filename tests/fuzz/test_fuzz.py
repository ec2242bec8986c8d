"""A bounded, coverage-guided fuzz run of request decoding and validation
finds no crash; and a crash, when there is one, is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.harness import check
from tests.fuzz.run import fuzz
from tests.fuzz.seeds import seeds

FUZZ_SECONDS = 20


@pytest.mark.parametrize("name", sorted(seeds()))
def test_each_seed_passes_the_harness(name: str) -> None:
    check(seeds()[name])


def test_twenty_seconds_of_fuzzing_find_no_crash(tmp_path: Path) -> None:
    run = fuzz(FUZZ_SECONDS, tmp_path)
    assert not run.crashed, f"{run.summary()}\n{run.output[-4000:]}"
    assert run.executions > 1000, run.summary()
    print(run.summary())


def test_a_crashing_input_fails_the_run_and_is_kept(tmp_path: Path) -> None:
    run = fuzz(5, tmp_path, target="tests.fuzz.crashing_target")
    assert run.crashed
    assert run.exit_code != 0
    assert run.crashes, "the crashing input was not saved"
    assert "a crash the fuzz run must report" in run.output
