"""A target that crashes on its first input, for the test that shows a
crash is reported (and fails the run) rather than lost in the output."""

from __future__ import annotations

from tests.fuzz.target import fuzz


def crash(data: bytes) -> None:
    raise RuntimeError(f"a crash the fuzz run must report ({len(data)} bytes)")


if __name__ == "__main__":
    fuzz(crash)
