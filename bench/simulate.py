"""`python -m bench.simulate [--workload spread,short] [--set LAG_PER_CHECK=0.1 ...]`

The real poll schedule (bot/arta/schedule.py) on the named workloads' job timings, simulated
in a second: no bot, no fakes, no event loop. Each job's checks come from next_poll_delay
with one shared DurationHistory, running jobs right-censored and the estimate refreshed once
a floor, as ArtaClient does; a check reaches the service up to `--latency` after it was due
and the client records the later age, as over a network. The gpt4free-style baseline (a check
at once and every 2 s) is computed on the same timings. Used to tune the schedule's
constants before spending minutes of `python -m bench` on them; the figures differ from the
bench's by its network and event-loop time (BENCHMARKS.md, issue 12).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
from dataclasses import dataclass

from bot.arta import schedule
from bot.arta.schedule import Censored, DurationEstimate, DurationHistory, Finished, JobView

LIMITS = schedule.PollLimits(1.0, 10.0)


@dataclass(frozen=True, slots=True)
class Job:
    submitted: float
    queue: float
    generation: float
    fails_at: float | None = None

    @property
    def end(self) -> float:
        return self.fails_at if self.fails_at is not None else self.queue + self.generation


@dataclass(frozen=True, slots=True)
class Figures:
    lag_p50: float
    lag_p95: float
    checks: float
    grid_lag_p50: float
    grid_checks: float


def jobs(name: str, seed: int) -> list[Job]:
    """The job timings of bench/workloads.py's named workloads (telegram-limits excepted)."""
    rng = random.Random(seed)
    if name == "short":
        return [Job(60 * k / 300, 0.2, 1.0) for k in range(300)]
    if name == "spread":
        return [Job(0.0, rng.uniform(0, 3), rng.uniform(5, 20)) for _ in range(300)]
    if name == "failures":
        out = []
        for _ in range(300):
            fails = rng.uniform(0.1, 1.0) if rng.random() < 0.1 else None
            out.append(Job(0.0, rng.uniform(0, 3), rng.uniform(5, 20), fails))
        return out
    if name in ("shift", "shift-reverse"):
        first, second = (15.0, 1.5) if name == "shift" else (1.5, 15.0)
        return [Job(60 * k / 160, 0.0, first if k < 80 else second) for k in range(160)]
    raise ValueError(f"no simulated workload {name!r}")


def simulate(
    plan: list[Job], *, seed: int = 1, latency: float = 0.05
) -> tuple[list[float], list[int]]:
    """Each job's lag (end to the check that saw it) and number of checks."""
    rng = random.Random(seed)
    history = DurationHistory()
    running: dict[int, tuple[str | None, float]] = {}
    cached: tuple[float, DurationEstimate | None] | None = None
    views = {i: JobView(0.0) for i in range(len(plan))}
    last_pending = dict.fromkeys(views, 0.0)
    lags = [0.0] * len(plan)
    checks = [0] * len(plan)
    due = [(job.submitted, i, False) for i, job in enumerate(plan)]
    heapq.heapify(due)
    while due:
        now, i, is_check = heapq.heappop(due)
        job = plan[i]
        view = views[i]
        age = now - job.submitted
        if is_check:
            seen = age + rng.uniform(0.0, latency)
            age += latency
            count = view.checks + 1
            if seen >= job.end:
                running.pop(i, None)
                start_by = view.started_by if view.started_by is not None else age
                history.record(
                    Finished(Censored(last_pending[i], age), view.queued_until, start_by)
                )
                lags[i], checks[i] = seen - job.end, count
                continue
            last_pending[i] = age
            running[i] = (None, age)
            if seen < job.queue and job.fails_at is None:
                view = JobView(age, count, age, None)
            else:
                view = JobView(age, count, view.queued_until, view.started_by or age)
        view = JobView(age, view.checks, view.queued_until, view.started_by)
        if cached is None or (cached[1] is None and history.version) or now - cached[0] >= 1.0:
            cached = (now, history.estimate(running=list(running.values())))
        views[i] = view
        explore = rng.random() if view.checks == 0 else None
        delay = schedule.next_poll_delay(view, cached[1], LIMITS, explore=explore)
        heapq.heappush(due, (job.submitted + age + delay, i, True))
    return lags, checks


def figures(plan: list[Job], *, seed: int = 1, latency: float = 0.05) -> Figures:
    lags, checks = simulate(plan, seed=seed, latency=latency)
    ends = [job.end for job in plan]
    return Figures(
        lag_p50=statistics.median(lags),
        lag_p95=statistics.quantiles(lags, n=20)[-1],
        checks=statistics.fmean(checks),
        grid_lag_p50=statistics.median(2 * math.ceil(end / 2) - end for end in ends),
        grid_checks=statistics.fmean(math.ceil(end / 2) + 1 for end in ends),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__)
    parser.add_argument("--workload", default="short,spread,failures,shift,shift-reverse")
    parser.add_argument("--seeds", type=int, default=3, help="medians over this many seeds")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument(
        "--set", action="append", default=[], help="NAME=VALUE: a schedule constant"
    )
    args = parser.parse_args(argv)
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        if not name.isupper() or not hasattr(schedule, name):
            parser.error(f"no schedule constant {name!r}")
        setattr(schedule, name, float(value))
    print("workload        lag p50  lag p95  checks  | 2 s grid: lag p50  checks")
    for name in args.workload.split(","):
        runs = [
            figures(jobs(name, seed), seed=seed, latency=args.latency)
            for seed in range(1, args.seeds + 1)
        ]
        m = [statistics.median(getattr(r, f) for r in runs) for f in Figures.__slots__]
        print(f"{name:<15} {m[0]:7.3f}  {m[1]:7.3f}  {m[2]:6.2f}  | {m[3]:17.3f}  {m[4]:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
