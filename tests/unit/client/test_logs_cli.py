"""tcctl logs' --since: the durations people type."""

from __future__ import annotations

import pytest

from trainconductor_client.cli.logs import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90", 90, id="plain seconds"),
        pytest.param("30s", 30, id="seconds"),
        pytest.param("10m", 600, id="minutes"),
        pytest.param("1h30m", 5400, id="hours and minutes"),
        pytest.param("2d", 172_800, id="days"),
    ],
)
def test_durations_are_read_as_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10 minutes", "1.5h", "h", "-5m", "10mx"])
def test_anything_else_is_refused_saying_what_is_taken(text: str) -> None:
    with pytest.raises(ValueError, match="such as 30s, 10m, 1h30m or 2d"):
        parse_duration(text)
