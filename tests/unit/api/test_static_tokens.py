"""The static token file: digests only, constant-time lookup, reloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trainconductor_api.authentication.static_tokens import (
    StaticTokenFileError,
    StaticTokens,
    parse,
    token_digest,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_listed_token_names_its_user_and_groups(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(
        f"# people\n{token_digest('s3cret-a')} alice ml,admins\n\n"
        f"{token_digest('s3cret-b')} bob  # no groups\n"
    )
    tokens = StaticTokens(path)
    alice = tokens.lookup("s3cret-a")
    assert alice is not None
    assert (alice.user, alice.groups, alice.method) == (
        "alice",
        frozenset({"ml", "admins"}),
        "static-token",
    )
    bob = tokens.lookup("s3cret-b")
    assert bob is not None
    assert bob.groups == frozenset()
    assert tokens.lookup("s3cret-c") is None
    assert tokens.lookup(token_digest("s3cret-a")) is None  # the digest is not the token


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("plain-token-in-the-file alice", id="a token instead of its digest"),
        pytest.param("sha256:abc alice", id="a short digest"),
        pytest.param("md5:" + "0" * 32 + " alice", id="another hash"),
        pytest.param("sha256:" + "0" * 64, id="no user"),
        pytest.param("sha256:" + "0" * 64 + " alice ml extra", id="too many fields"),
    ],
)
def test_a_bad_line_is_refused_without_repeating_it(line: str) -> None:
    with pytest.raises(StaticTokenFileError) as err:
        parse(f"# ok\n{line}\n")
    assert str(err.value).startswith("line 2:")
    assert line.split()[0] not in str(err.value)


def test_a_changed_file_is_read_again_and_a_broken_one_keeps_the_last(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{token_digest('one')} alice\n")
    clock = Clock()
    tokens = StaticTokens(path, clock=clock)
    path.write_text(f"{token_digest('two')} alice\n")
    os.utime(path, ns=(1, 1))
    assert tokens.lookup("one") is not None  # not looked at within the second
    clock.now += 2
    assert tokens.lookup("one") is None
    assert tokens.lookup("two") is not None
    path.write_text("broken\n")
    clock.now += 2
    assert tokens.lookup("two") is not None
