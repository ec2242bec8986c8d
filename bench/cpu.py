"""CPU time of the processes a bench runs, read from /proc."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its living descendants (Kueue's manager
    runs under unshare and sh), from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@contextmanager
def cpu_used(processes: dict[str, int | None], into: dict[str, Any]) -> Iterator[None]:
    """CPU seconds each process spent while the block ran, into `into['cpu_seconds']`."""
    known = {name: pid for name, pid in processes.items() if pid is not None}
    before = {name: cpu_seconds(pid) for name, pid in known.items()}
    yield
    into["cpu_seconds"] = {
        name: round(cpu_seconds(pid) - before[name], 1) for name, pid in known.items()
    }
