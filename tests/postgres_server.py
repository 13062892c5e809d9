"""A throwaway PostgreSQL server for the test session, from the binaries on the machine.

Our own ~100 lines rather than pytest-postgresql: that plugin drives the server through
psycopg (a second driver next to asyncpg) and does not run it as another user, which a
root CI container needs (PostgreSQL refuses to run as root). One server per pytest
session on a free port and a temp folder; each test gets a fresh database in it.

Where the binaries are missing the PostgreSQL tests skip with one reason; with
REQUIRE_POSTGRES=1 in the environment (set by .ci/run) that skip is a failure instead.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRED = "REQUIRE_POSTGRES"
SUPERUSER = "postgres"
# initdb, pg_ctl and postgres must come from one installation (one version).
_PROGRAMS = ("initdb", "pg_ctl", "postgres")
# Seconds pg_ctl waits for the server to accept connections, then to stop.
START_TIMEOUT = 60


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when the run requires PostgreSQL (REQUIRE_POSTGRES=1)."""
    if os.environ.get(REQUIRED, "") not in ("", "0"):
        pytest.fail(f"PostgreSQL tests are required ({REQUIRED}=1) but cannot run: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def find_binaries(path: str | None = None, pattern: str = "/usr/lib/postgresql/*/bin") -> Path:
    """The folder holding initdb, pg_ctl and postgres: PATH first, then Debian's layout.

    Raises LookupError saying what is missing.
    """
    initdb = shutil.which("initdb", path=path)
    if initdb is not None:
        folder = Path(os.path.realpath(initdb)).parent
        if all((folder / program).exists() for program in _PROGRAMS):
            return folder
    for candidate in sorted(glob.glob(pattern), key=_version_key, reverse=True):
        folder = Path(candidate)
        if all((folder / program).exists() for program in _PROGRAMS):
            return folder
    raise LookupError(f"no initdb/pg_ctl/postgres on PATH or in {pattern}")


def _version_key(folder: str) -> tuple[int, str]:
    version = Path(folder).parent.name
    return (int(version) if version.isdigit() else 0, folder)


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin_dir: Path
    run_as: str | None
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _shared: str | None = None

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        import asyncpg

        name = f"test_{next(self._numbers)}"
        admin = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
        finally:
            await admin.close()
        return self.url(name)

    async def clean_database(self) -> str:
        """The session's shared database, emptied of rows; returns its URL.

        CREATE DATABASE costs ~1 s here (measured: 0.93-1.4 s per database on this 2-core
        machine); TRUNCATE a few ms. Tests that need a database without the schema ask
        for `create_database()` instead.
        """
        import asyncpg

        from bot.storage.postgres.database import open_postgres

        if self._shared is None:
            url = await self.create_database()
            storage = await open_postgres(url)
            await storage.close()
            self._shared = url
        conn = await asyncpg.connect(self._shared, timeout=10)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename != 'schema_migrations'"
            )
            if tables:
                names = ", ".join(row["tablename"] for row in tables)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
        finally:
            await conn.close()
        return self._shared

    async def drop_database(self, url: str) -> None:
        import asyncpg

        name = url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = (self.root / "server.log").read_text() if self.has_log else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()} {log[-2000:]}")

    @property
    def has_log(self) -> bool:
        return (self.root / "server.log").exists()

    def start(self) -> None:
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        # Durability is not under test here: no fsync makes CREATE DATABASE per test cheap.
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "start", "-D", str(data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "-t", str(START_TIMEOUT))  # fmt: skip

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-D", str(self.root / "data"), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """Start a server or call `unavailable` with the reason it cannot be."""
    try:
        bin_dir = find_binaries()
    except LookupError as error:
        unavailable(str(error))
        raise
    run_as: str | None = None
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root; CI and these sessions are root.
        if shutil.which("runuser") is None:
            unavailable("running as root and runuser is missing")
        try:
            import pwd

            pwd.getpwnam(SUPERUSER)
        except KeyError:
            unavailable(f"running as root and there is no {SUPERUSER!r} user to run the server")
        run_as = SUPERUSER
    root = Path(tempfile.mkdtemp(prefix="bot-pg-"))
    if run_as is not None:
        shutil.chown(root, user=run_as, group=None)
        os.chmod(root, 0o700)
    server = PostgresServer(root=root, port=_free_port(), bin_dir=bin_dir, run_as=run_as)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
