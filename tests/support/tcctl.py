"""Runs `tcctl` as a user does: a process, its output and its exit code."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def tcctl_path() -> str:
    path = shutil.which("tcctl", path=str(Path(sys.executable).parent))
    if path is None:
        raise RuntimeError("tcctl is not installed in the virtualenv: run hack/venv.sh")
    return path


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def env(address: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "TC_ADDRESS": address, "COLUMNS": "200", **extra}


def tcctl(address: str, *args: str, timeout: float = 90) -> Run:
    result = subprocess.run(
        [tcctl_path(), *args], env=env(address), capture_output=True, text=True, timeout=timeout
    )
    return Run(result.returncode, result.stdout, result.stderr)


async def tcctl_async(address: str, *args: str, user: str = "", stdin: str = "") -> Run:
    """For tests whose API server runs in the test's own event loop."""
    extra = {"TC_USER": user} if user else {}
    process = await asyncio.create_subprocess_exec(
        tcctl_path(),
        *args,
        env=env(address, **extra),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())
