"""The benchmark still runs end to end (a few jobs, no timing claims), so it cannot rot."""

from __future__ import annotations

import math
from pathlib import Path

from bench.__main__ import run
from bench.report import ROWS, table, text_table
from bench.run import Distribution, Params


async def test_bench_delivers_every_job_through_both_bots_and_reports_every_figure(
    tmp_path: Path,
) -> None:
    params = Params(
        jobs=4,
        time_factor=0.05,
        queue=Distribution("uniform", 0.0, 3.0),
        generation=Distribution("uniform", 5.0, 20.0),
        burst=5,
        grace=20.0,
    )

    ours, baseline = await run(params, tmp_path)

    assert baseline is not None
    for result in (ours, baseline):
        assert (result.completed, result.failed) == (4, 0), result.name
        assert len(result.delivery) == 4
        assert result.burst_answered == 5
        assert result.signups >= 1
        assert result.status_polls >= 4
        assert result.connections >= 1
        assert result.cpu_seconds > 0
        assert result.peak_rss_mb > 0
        assert result.exit_code == 0, (tmp_path / result.name / "bot.log").read_text()
        for row in ROWS:
            assert not math.isnan(row.value(result)), row.label
    rendered = text_table(table([ours], [baseline]))
    for row in ROWS:
        assert row.label in rendered


def test_named_workloads_plan_what_issue_12_describes() -> None:
    from bench.run import plan_jobs
    from bench.workloads import workload

    failing = plan_jobs(workload("failures"))
    fails = [p for p in failing if p.fails]
    assert 15 <= len(fails) <= 45  # about 10 % of 300
    assert all(p.ends_at <= 1.0 for p in fails)
    limits = plan_jobs(workload("telegram-limits"))
    groups = {p.chat_id for p in limits if p.chat_id < 0}
    private = {p.chat_id for p in limits if p.chat_id > 0}
    assert (len(limits), len(groups), len(private)) == (1000, 10, 500)
    shift = plan_jobs(workload("shift"))
    assert {p.ends_at for p in shift[:80]} == {15.0} and {p.ends_at for p in shift[80:]} == {1.5}


async def test_bench_tells_how_soon_failures_reach_the_user_and_counts_429s(
    tmp_path: Path,
) -> None:
    from bench.workloads import workload

    params = workload(
        "failures", jobs=6, time_factor=0.05, fail_share=0.5, telegram_limits=True, grace=20.0
    )
    ours, baseline = await run(params, tmp_path)
    assert baseline is not None
    for result in (ours, baseline):
        fails = sum(1 for _, _, failing in result.per_job if failing)
        assert fails >= 1, result.name
        assert len(result.failure_told) == fails, result.name
        assert result.completed == 6 - fails, result.name
        assert result.too_many_requests >= 0
