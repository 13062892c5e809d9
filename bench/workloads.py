"""The named workloads of issue 12, each run through our bot and the baseline in one go.

`python -m bench --workload short` (or several, comma-separated, or `all`)."""

from __future__ import annotations

import statistics
from dataclasses import replace

from bench.run import Distribution, Params, Result

SPREAD = Distribution("uniform", 5.0, 20.0)
WORKLOADS: dict[str, Params] = {
    # Today's: queue 0-3 s, generation 5-20 s, everybody at once.
    "spread": Params(jobs=300, burst=0, workload="spread"),
    # Every job 1.2 s (0.2 s queued, 1.0 s drawing), sent over 60 s: 5 jobs a second, with
    # three messages a job, is what one bot may send under Telegram's 30 a second.
    "short": Params(
        jobs=300,
        queue=Distribution("const", 0.2),
        generation=Distribution("const", 1.0),
        ramp=60.0,
        burst=0,
        workload="short",
    ),
    # 15 s jobs, then the service speeds up to 1.5 s for the second half; sent over 60 s.
    "shift": Params(
        jobs=160,
        queue=Distribution("const", 0.0),
        generation=Distribution("const", 15.0),
        generation_after=Distribution("const", 1.5),
        ramp=60.0,
        burst=0,
        workload="shift",
    ),
    # The reverse: 1.5 s, then 15 s.
    "shift-reverse": Params(
        jobs=160,
        queue=Distribution("const", 0.0),
        generation=Distribution("const", 1.5),
        generation_after=Distribution("const", 15.0),
        ramp=60.0,
        burst=0,
        workload="shift-reverse",
    ),
    # Like spread, but 10 % of the jobs fail within 1 s of submission.
    "failures": Params(jobs=300, burst=0, fail_share=0.1, fail_within=1.0, workload="failures"),
    # 1,000 jobs over 500 private chats and 10 groups (a tenth of the jobs), finishing
    # within seconds of each other, against Telegram's flood limits.
    "telegram-limits": Params(
        jobs=1000,
        queue=Distribution("uniform", 0.0, 1.0),
        generation=Distribution("uniform", 2.0, 6.0),
        private_chats=500,
        groups=10,
        group_share=0.1,
        telegram_limits=True,
        burst=0,
        grace=300.0,
        workload="telegram-limits",
    ),
}


def workload(name: str, **overrides: object) -> Params:
    try:
        params = WORKLOADS[name]
    except KeyError:
        raise ValueError(f"no workload {name!r}; known: {', '.join(WORKLOADS)}") from None
    return replace(params, **overrides)  # type: ignore[arg-type]


# Figures a workload adds to the table: (label, value, digits).
def after_change(result: Result, start: int, end: int | None = None) -> list[float]:
    half = result.jobs // 2
    jobs = result.per_job[half + start : None if end is None else half + end]
    return [d for d, _, fails in jobs if d is not None and not fails]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def checks(result: Result, start: int, end: int | None) -> float:
    return _mean([float(polls) for _, polls, _ in result.per_job[start:end]])


def failure_quantile(result: Result, q: float) -> float:
    told = sorted(result.failure_told)
    if not told:
        return float("nan")
    return told[min(len(told) - 1, int(q * len(told)))]
