"""`python -m bench --processes` still runs end to end (a few jobs, no timing claims):
several real bot processes on one PostgreSQL share the jobs, and a kill -9 of one loses
none of them."""

from __future__ import annotations

from pathlib import Path

from bench.processes import report, run_cluster
from bench.run import Distribution, Params
from tests.postgres_server import PostgresServer

PARAMS = Params(
    jobs=12,
    queue=Distribution("const", 0.0),
    generation=Distribution("const", 0.5),
    burst=0,
)


async def test_two_processes_deliver_every_job_once_with_one_sign_up(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    # pg_server: the bench starts a server of its own from the same binaries; asking for
    # the session's one makes a machine without them skip (or fail in CI) with its reason.
    result = await run_cluster(2, PARAMS, tmp_path)
    assert (result.delivered, result.duplicate_albums, result.resubmitted) == (12, 0, 0)
    assert result.signups == 1
    assert sum(result.done_by_process) == 12
    assert result.saved == 12
    assert "| 2 | 12/12 | 12/12 |" in report([result])


async def test_a_killed_process_loses_no_job(tmp_path: Path, pg_server: PostgresServer) -> None:
    params = Params(
        jobs=30, queue=Distribution("const", 0.0), generation=Distribution("const", 1.0), burst=0
    )
    result = await run_cluster(3, params, tmp_path, kill=True, lease=2.0)
    # Every job saved is delivered; an update the killed process had answered but not
    # saved yet is lost (webhook mode answers Telegram at once).
    assert result.delivered == result.saved > 0
    assert result.takeover_seconds is not None  # nothing stays with the dead process
