"""Set-up and entry points that work on a fresh machine with only Python 3.11+.

    python3 dev.py start [ARGS...]   create .venv if needed, install, run the bot
    python3 dev.py test [ARGS...]    create .venv if needed, install with dev extras, run the tests
                                     (without ARGS: the whole suite on up to 4 cores)
    python3 dev.py lint              ruff check + ruff format --check
    python3 dev.py lock [--upgrade]  re-resolve requirements.lock after pyproject.toml changed

Installs take the exact versions in requirements.lock (a pip constraints file: the versions
that were measured and tested). The virtualenv is reinstalled only when pyproject.toml or
the lock changes (a hash stamp in .venv), so the second run starts at once.

`lock` keeps every pinned version that still fits and resolves only what is new (a
dependency added to pyproject.toml); `lock --upgrade` resolves everything afresh to the
newest versions pyproject.toml admits.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCK = ROOT / "requirements.lock"
PROJECT = "arta-image-bot"
LOCK_HEADER = """\
# Exact versions of every package the bot and its tests run on: a pip constraints file.
# dev.py installs with `pip install -c requirements.lock`; so does the Dockerfile.
# Regenerate with `python3 dev.py lock` (keeps what fits) or `python3 dev.py lock --upgrade`.
# Resolved on CPython {python} ({platform}).
"""


def main(argv: list[str]) -> int:
    # dev.py runs under whatever python3 the machine has, before any virtualenv exists.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.stderr.write("Python 3.11 or newer is needed.\n")
        return 2
    if not argv or argv[0] not in {"start", "test", "lint", "bench", "lock"}:
        sys.stderr.write(__doc__ or "")
        return 2
    command, rest = argv[0], argv[1:]
    if command == "lock":
        return _lock(upgrade="--upgrade" in rest)
    _ensure_venv(dev=command != "start")
    if command == "start":
        return _run([str(PYTHON), "-m", "bot", *rest])
    if command == "test":
        return _run([str(PYTHON), "-m", "pytest", *(rest or _parallel())])
    if command == "bench":
        return _run([str(PYTHON), "-m", "bench", *rest])
    lint = _run([str(PYTHON), "-m", "ruff", "check", "."])
    return lint or _run([str(PYTHON), "-m", "ruff", "format", "--check", "."])


def _parallel() -> list[str]:
    """The whole suite on up to 4 cores (pytest-xdist): most of its time is subprocesses
    importing aiogram. A run with arguments (one file, -k ...) stays in one process."""
    workers = min(os.cpu_count() or 1, 4)
    return ["-n", str(workers)] if workers > 1 else []


def _ensure_venv(*, dev: bool) -> None:
    _create_venv()
    extras = ".[dev]" if dev else "."
    stamp = VENV / f".installed-{'dev' if dev else 'run'}"
    digest = install_digest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing {extras} into {VENV}", flush=True)
    cmd = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if LOCK.exists():
        cmd += ["-c", str(LOCK)]
    subprocess.run([*cmd, "-e", extras], cwd=ROOT, check=True)
    stamp.write_text(digest)


def _create_venv() -> None:
    if not PYTHON.exists():
        print(f"creating virtualenv in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)


def install_digest() -> str:
    """What an install depends on: a change to either file reinstalls."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    if LOCK.exists():
        digest.update(LOCK.read_bytes())
    return digest.hexdigest()


def _lock(*, upgrade: bool) -> int:
    """Resolve `.[dev]` without installing anything (pip's --dry-run --report) and write
    the exact versions it picked to requirements.lock."""
    _create_venv()
    report = VENV / "lock-report.json"
    cmd = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    cmd += ["--dry-run", "--ignore-installed", "--report", str(report)]
    if LOCK.exists() and not upgrade:
        cmd += ["-c", str(LOCK)]
    if subprocess.call([*cmd, ".[dev]"], cwd=ROOT) != 0:
        if not upgrade:
            sys.stderr.write(
                "A pinned version no longer fits pyproject.toml: "
                "run `python3 dev.py lock --upgrade`.\n"
            )
        return 1
    resolved = json.loads(report.read_text())
    report.unlink()
    pins = sorted(
        (item["metadata"]["name"], item["metadata"]["version"])
        for item in resolved["install"]
        if _normalise(item["metadata"]["name"]) != PROJECT
    )
    env = resolved.get("environment", {})
    header = LOCK_HEADER.format(
        python=env.get("python_full_version", "?"), platform=env.get("sys_platform", "?")
    )
    body = "".join(f"{name}=={version}\n" for name, version in sorted(pins, key=_lock_key))
    LOCK.write_text(header + body)
    print(f"wrote {len(pins)} pins to {LOCK.name}", flush=True)
    return 0


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _lock_key(pin: tuple[str, str]) -> str:
    return _normalise(pin[0])


def _run(cmd: list[str]) -> int:
    """Run `cmd` and return its exit status. Ctrl-C reaches the child too (one process
    group) and the bot stops cleanly on it: this parent waits for that instead of dying
    with a traceback of its own; a SIGTERM from a process manager is passed on."""
    process = subprocess.Popen(cmd, cwd=ROOT)
    # Set after Popen returns (the child has exec'd): an ignored signal would be inherited.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
    try:
        code = process.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
