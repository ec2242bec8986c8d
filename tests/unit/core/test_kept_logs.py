"""What of a log is kept: its last whole lines within the limit."""

from __future__ import annotations

import pytest

from trainconductor_core.kept_logs import KeptLog, last_lines


@pytest.mark.parametrize(
    ("log", "limit", "kept", "dropped"),
    [
        pytest.param(b"a\nb\n", 10, b"a\nb\n", False, id="a log within the limit is whole"),
        pytest.param(b"aaaa\nbb\ncc\n", 7, b"bb\ncc\n", True, id="a line cut at the start goes"),
        pytest.param(b"aaaa\nbb\ncc\n", 6, b"bb\ncc\n", True, id="whole lines that fit exactly"),
        pytest.param(b"x" * 20 + b"\n", 5, b"xxxx\n", True, id="one long line keeps its end"),
    ],
)
def test_the_last_whole_lines_within_the_limit_are_kept(
    log: bytes, limit: int, kept: bytes, dropped: bool
) -> None:
    assert last_lines(log, limit) == (kept, dropped)


def test_a_kept_log_reads_back_as_it_was_written() -> None:
    kept = KeptLog(3, 2, "train-x-a2-3-abcde", "2026-12-05T07:11:20Z é\n", earlier_dropped=True)
    assert KeptLog.decode(3, kept.encode()) == kept
