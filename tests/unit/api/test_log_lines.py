"""A pod's log cut into lines of bounded size, and read again without
sending a line twice."""

from __future__ import annotations

import pytest

from trainconductor_api.log_lines import Line, LineSplitter, LogTime, SeenLines, parse_time

T1 = b"2026-12-05T07:11:20.726698000Z"
T2 = b"2026-12-05T07:11:21.000000001Z"


def test_lines_keep_their_nanosecond_times_and_text() -> None:
    lines = LineSplitter(100).feed(T1 + b" epoch 1\n" + T2 + b" loss 0.5\n")
    assert [line.text for line in lines] == ["epoch 1", "loss 0.5"]
    assert lines[0].time == LogTime(1796454680, 726698000)
    assert lines[1].time == LogTime(1796454681, 1)
    assert not any(line.truncated for line in lines)


def test_a_line_split_across_chunks_comes_out_whole() -> None:
    splitter = LineSplitter(100)
    assert splitter.feed(T1 + b" ep") == []
    assert splitter.feed(b"och") == []
    assert [line.text for line in splitter.feed(b" 1\nrest")] == ["epoch 1"]
    assert [line.text for line in splitter.flush()] == ["rest"]


def test_a_line_longer_than_the_limit_is_cut_and_marked() -> None:
    splitter = LineSplitter(256)
    lines = splitter.feed(T1 + b" " + b"x" * 10_000)
    lines += splitter.feed(b"y" * 10_000 + b"\n" + T2 + b" next\n")
    assert [len(line.text) for line in lines] == [256 + 40 - len(T1) - 1, 4]
    assert [line.truncated for line in lines] == [True, False]
    assert set(lines[0].text) == {"x"}


def test_bytes_that_are_not_utf8_are_replaced() -> None:
    (line,) = LineSplitter(100).feed(T1 + b" caf\xe9\n")
    assert line.text == "caf\ufffd"


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(b"2026-12-05T07:11:20Z", id="whole seconds"),
        pytest.param(b"2026-12-05T07:11:20.5Z", id="a short fraction"),
    ],
)
def test_times_without_nine_digits_are_read(stamp: bytes) -> None:
    assert parse_time(stamp) is not None


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(b"2026-12-05 07:11:20Z", id="a space for the T"),
        pytest.param(b"2026-12-05T07:11Z", id="no seconds"),
        pytest.param(b"20261205T071120Z", id="basic format"),
        pytest.param(b"2026-W49-1T07:11:20Z", id="a week date"),
        pytest.param(b"2026-12-5T7:11:20Z", id="single digits"),
        pytest.param(b"2026-02-30T07:11:20Z", id="no such day"),
        pytest.param(b"2026-12-05T07:11:20.5e3Z", id="not a fraction"),
        pytest.param(b"2026-12-05T07:11:20+01:00", id="an offset"),
        pytest.param(b"2026-12-05T07:11:\xff0Z", id="not ascii"),
    ],
)
def test_what_kubernetes_does_not_write_is_not_a_time(stamp: bytes) -> None:
    assert parse_time(stamp) is None
    (line,) = LineSplitter(100).feed(stamp + b" text\n")
    assert line.time is None
    assert line.text == stamp.decode("utf-8", "replace") + " text"


def test_lines_of_one_second_keep_their_own_fractions() -> None:
    stamps = [b"2026-12-05T07:11:20.%09dZ" % nanos for nanos in (1, 2, 999_999_999)]
    assert [parse_time(stamp) for stamp in stamps] == [
        LogTime(1796454680, 1),
        LogTime(1796454680, 2),
        LogTime(1796454680, 999_999_999),
    ]


def test_a_line_without_a_time_is_all_text() -> None:
    (line,) = LineSplitter(100).feed(b"no time here\n")
    assert line == Line(None, "no time here")


def test_a_read_again_from_the_last_second_sends_only_what_is_new() -> None:
    seen = SeenLines()
    at = LogTime(100, 5)
    first = [Line(LogTime(99, 0), "a"), Line(at, "b"), Line(at, "c")]
    assert [seen.is_new(line) for line in first] == [True, True, True]
    assert seen.last == at
    assert seen.last.rfc3339() == "1970-01-01T00:01:40Z"
    seen.rewind()
    again = [*first, Line(at, "d"), Line(LogTime(101, 0), "e")]
    assert [line.text for line in again if seen.is_new(line)] == ["d", "e"]


def test_a_resumed_follow_sends_only_lines_after_the_last_it_got() -> None:
    at = LogTime(100, 5)
    seen = SeenLines(after=at)
    replayed = [Line(LogTime(99, 0), "a"), Line(at, "b"), Line(LogTime(100, 6), "c")]
    assert [line.text for line in replayed if seen.is_new(line)] == ["c"]
