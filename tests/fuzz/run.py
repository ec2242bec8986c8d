"""A bounded fuzz run of request decoding and validation.

    python -m tests.fuzz.run --seconds 60

Runs the atheris target in a subprocess (libFuzzer ends the process it runs
in) for that long, from the seeds, and prints how many inputs it ran and
whether any crashed. Exits 1 on a crash and leaves the crashing input in
the work directory; otherwise removes the directory it made.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.seeds import seeds

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests.fuzz.target"
# libFuzzer's final statistics, or else its last progress line ("#8192 pulse ...").
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_PROGRESS = re.compile(r"^#(\d+)\s", re.MULTILINE)
_CRASH_SIGNS = ("Uncaught Python exception", "==ERROR: libFuzzer", "deadly signal")


@dataclass(frozen=True)
class FuzzRun:
    executions: int
    crashes: list[Path]  # the inputs libFuzzer saved as crashing
    exit_code: int
    output: str

    @property
    def crashed(self) -> bool:
        return (
            bool(self.crashes)
            or self.exit_code != 0
            or any(sign in self.output for sign in _CRASH_SIGNS)
        )

    def summary(self) -> str:
        verdict = "no crash"
        if self.crashed:
            saved = ", ".join(str(p) for p in self.crashes) or "no input saved"
            verdict = f"CRASH (exit code {self.exit_code}; {saved})"
        return f"executions: {self.executions}\nresult: {verdict}"


def fuzz(seconds: int, work_dir: Path, target: str = TARGET) -> FuzzRun:
    """Fuzzes for `seconds`, with the corpus and any crash under `work_dir`."""
    corpus, artifacts = work_dir / "corpus", work_dir / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (corpus / f"seed-{name}").write_bytes(data)
    command = [
        sys.executable,
        "-m",
        target,
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        "-max_len=8192",
        "-timeout=10",  # one input taking this long is a hang: reported as a crash
        "-rss_limit_mb=2048",
        str(corpus),
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=seconds + 120
    )
    output = done.stdout + done.stderr
    counts = _EXECUTED.findall(output) or _PROGRESS.findall(output) or ["0"]
    return FuzzRun(
        executions=int(counts[-1]),
        crashes=sorted(artifacts.iterdir()),
        exit_code=done.returncode,
        output=output,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    parser.add_argument(
        "--work-dir", type=Path, help="corpus and crashes (default: a new temporary directory)"
    )
    args = parser.parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="tc-fuzz-"))
    run = fuzz(args.seconds, work_dir)
    if run.crashed:
        print(run.output[-6000:], file=sys.stderr)
    print(run.summary())
    if not run.crashed and args.work_dir is None:
        shutil.rmtree(work_dir)
    return 1 if run.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
