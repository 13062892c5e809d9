"""Set-up and entry points that work on a fresh machine with only Python 3.11+.

    python3 dev.py start [ARGS...]   create .venv if needed, install, run the bot
    python3 dev.py test [ARGS...]    create .venv if needed, install with dev extras, run the tests
    python3 dev.py lint              ruff check + ruff format --check

The virtualenv is reinstalled only when pyproject.toml changes (a hash stamp in .venv),
so the second run starts at once.
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
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def main(argv: list[str]) -> int:
    # dev.py runs under whatever python3 the machine has, before any virtualenv exists.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.stderr.write("Python 3.11 or newer is needed.\n")
        return 2
    if not argv or argv[0] not in {"start", "test", "lint", "bench"}:
        sys.stderr.write(__doc__ or "")
        return 2
    command, rest = argv[0], argv[1:]
    _ensure_venv(dev=command != "start")
    if command == "start":
        return _run([str(PYTHON), "-m", "bot", *rest])
    if command == "test":
        return _run([str(PYTHON), "-m", "pytest", *rest])
    if command == "bench":
        return _run([str(PYTHON), "-m", "bench", *rest])
    lint = _run([str(PYTHON), "-m", "ruff", "check", "."])
    return lint or _run([str(PYTHON), "-m", "ruff", "format", "--check", "."])


def _ensure_venv(*, dev: bool) -> None:
    if not PYTHON.exists():
        print(f"creating virtualenv in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    extras = ".[dev]" if dev else "."
    stamp = VENV / f".installed-{'dev' if dev else 'run'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing {extras} into {VENV}", flush=True)
    cmd = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", extras]
    subprocess.run(cmd, cwd=ROOT, check=True)
    stamp.write_text(digest)


def _run(cmd: list[str]) -> int:
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
