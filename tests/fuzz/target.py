"""The fuzzing process: atheris drives `harness.check` with inputs that
libFuzzer mutates towards new coverage of the instrumented code.

Run by `tests.fuzz.run`, which bounds its time and reads its verdict; its
arguments are libFuzzer's (`-max_total_time=N`, a corpus directory, ...).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]

# Comparisons inside regular expressions and str methods guide the mutations
# too; the patterns must be compiled after this, so it comes first.
atheris.enabled_hooks.add("RegEx")
atheris.enabled_hooks.add("str")

with atheris.instrument_imports(include=["trainconductor_api", "trainconductor_core", "tests"]):
    from tests.fuzz.harness import check


def fuzz(one_input: Callable[[bytes], None]) -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()  # exits the process when libFuzzer is done


if __name__ == "__main__":
    fuzz(check)
