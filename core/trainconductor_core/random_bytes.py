"""Random bytes from the kernel's generator, as `secrets` draws them, read
some at a time: a create takes two draws (its id's suffix and, when the
client sent none, a request id), and a system call for each cost more than
the rest of making the id."""

from __future__ import annotations

import os
import threading

_CHUNK = 4096


class RandomBytes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        # A forked child must not hand out what its parent will.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._offset = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._offset + count > len(self._buffer):
                self._buffer, self._offset = os.urandom(max(_CHUNK, count)), 0
            start = self._offset
            self._offset += count
            return self._buffer[start : self._offset]

    def below(self, limit: int) -> int:
        """A uniform integer in [0, limit); `limit` a power of two up to 2**32."""
        if limit <= 0 or limit > 1 << 32 or limit & (limit - 1):
            raise ValueError(f"{limit} is not a power of two up to 2**32")
        return int.from_bytes(self.take(4)) & (limit - 1)

    def hex(self, count: int) -> str:
        """`count` random bytes as hex, as `secrets.token_hex(count)`."""
        return self.take(count).hex()


RANDOM = RandomBytes()
