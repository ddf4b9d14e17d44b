#!/usr/bin/env python3
"""One-command developer entry points; needs only Python 3.11+ and pip.

    python3 dev.py demo [demo options]   run the resilience demo
    python3 dev.py test [pytest options] ruff + mypy --strict + pytest (branch coverage >= 90 %)
    python3 dev.py bench [options]       run the benchmarks and rewrite docs/benchmarks.md

Each command creates ``.venv`` on first use and reinstalls the project into it whenever
``pyproject.toml`` changes, so a fresh clone needs nothing else.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _run(*args: str | Path) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT)


def _ensure_env(extras: str) -> None:
    """Create the virtual environment and install the project with ``extras``, once per change."""
    if sys.version_info < (3, 11):  # noqa: UP036 - a clear message for whoever runs an old python3
        sys.exit(f"buttress needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    target = f".[{extras}]" if extras else "."
    print(f"dev.py: installing {target} into .venv", flush=True)
    rc = _run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target)
    if rc:
        sys.exit(rc)
    stamp.write_text(digest)


def demo(argv: list[str]) -> int:
    _ensure_env("")
    return _run(PY, "-m", "buttress", "demo", *argv)


def test(argv: list[str]) -> int:
    _ensure_env("dev")
    steps: list[tuple[str | Path, ...]] = [
        (PY, "-m", "ruff", "check", "src", "tests", "benchmarks", "examples", "dev.py"),
        (PY, "-m", "ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "dev.py"),
        (PY, "-m", "mypy"),
        (
            PY, "-m", "pytest", "--cov", "--cov-branch", "--cov-report=term",
            "--cov-fail-under=90", *argv,
        ),
    ]  # fmt: skip
    for step in steps:
        print("dev.py: $", " ".join(str(s) for s in step[1:]), flush=True)
        rc = _run(*step)
        if rc:
            print(f"dev.py: step failed with exit code {rc}", flush=True)
            return rc
    return 0


def bench(argv: list[str]) -> int:
    _ensure_env("dev")
    return _run(PY, "-m", "benchmarks", *argv)


COMMANDS = {"demo": demo, "test": test, "bench": bench}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
