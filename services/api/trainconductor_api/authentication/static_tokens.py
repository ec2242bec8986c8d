"""Static bearer tokens, for clients outside the cluster.

The file (mounted from a Secret) holds no token, only its SHA-256 digest:

    # comment
    sha256:<64 hex digits> <user> [group,group]

A presented token is hashed and compared with every digest in constant time
(`hmac.compare_digest`, no early exit), so the time an answer takes says
nothing about how close a guess was. The file is read again when it changes,
so tokens are added and revoked without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainconductor_api.identity import Identity

log = logging.getLogger(__name__)

METHOD = "static-token"
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_RECHECK_SECONDS = 1.0  # how often the file's modification time is looked at


class StaticTokenFileError(ValueError):
    pass


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    identity: Identity


def token_digest(token: str) -> str:
    """The form a token takes in the file: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def parse(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        # The line is never quoted in the error: a misplaced token would leak.
        if len(parts) not in (2, 3):
            raise StaticTokenFileError(
                f"line {number}: expected 'sha256:<hex digest> <user> [group,group]'"
            )
        match = _DIGEST.fullmatch(parts[0].lower())
        if match is None:
            raise StaticTokenFileError(
                f"line {number}: the first field must be sha256: and 64 hex digits "
                "(the token's digest, never the token)"
            )
        groups = frozenset(g for g in parts[2].split(",") if g) if len(parts) == 3 else frozenset()
        entries.append(_Entry(bytes.fromhex(match.group(1)), Identity(parts[1], groups, METHOD)))
    return entries


class StaticTokens:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._clock = clock
        self._stamp = _stamp(path)
        self._entries = parse(path.read_text())
        self._checked = clock()

    def lookup(self, token: str) -> Identity | None:
        self._reload_if_changed()
        presented = hashlib.sha256(token.encode()).digest()
        found: Identity | None = None
        for entry in self._entries:  # all of them, whether or not one matched
            if hmac.compare_digest(presented, entry.digest):
                found = entry.identity
        return found

    def _reload_if_changed(self) -> None:
        now = self._clock()
        if now - self._checked < _RECHECK_SECONDS:
            return
        self._checked = now
        try:
            stamp = _stamp(self._path)
            if stamp == self._stamp:
                return
            entries = parse(self._path.read_text())
        except (OSError, StaticTokenFileError) as err:
            # Keep serving the tokens last read rather than refusing everyone.
            log.warning(
                "static tokens file not reloaded; keeping the previous tokens",
                extra={"path": str(self._path), "error": str(err)},
            )
            return
        self._stamp, self._entries = stamp, entries
        log.info("static tokens reloaded", extra={"path": str(self._path), "tokens": len(entries)})


def _stamp(path: Path) -> tuple[int, int, int]:
    # stat follows the symlinks a Secret volume swaps on update, so the inode
    # changes even when the modification time does not.
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size, st.st_ino
