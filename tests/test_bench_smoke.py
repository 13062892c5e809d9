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
