"""The results as a table (stdout) and as a section of BENCHMARKS.md."""

from __future__ import annotations

import math
import platform
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.run import Params, Result

HEADER = """# Benchmarks

`python -m bench` (or `python3 dev.py bench`) starts the fake ARTA and the fake Bot API on
127.0.0.1 in its own process, starts the real bot (`python -m bot --config ...`) in another
process pointed at them, and plays one user per job sending
`/imagine <unique prompt> --model flux -n <1-4>`. The same workload then runs through the
baseline: the same bot with a client that does what gpt4free's ARTA provider does (a fresh
aiohttp session per job, the token read from a JSON file per job with no lock, a status
check at once and then every 2 s with no deadline; `bench/baseline_client.py`). Every leg
gets fresh fakes and a fresh database. `--write` replaces the section of this file that has
the same command.

How the figures are taken:
* *delivery after done*: from the moment the fake ARTA's clock says a job's generation
  finished (record created + queue + generation seconds, not the moment a poll saw DONE)
  to the album's (or photo's) request arriving at the fake Bot API; the fakes share this
  process, so when its event loop runs late an album is stamped late too: the *fakes' own
  event-loop lag* row shows by how much (how late a 50 ms sleep woke up, during the jobs);
* *status polls*, *sign-ups*, *refreshes*: counted by the fake ARTA; *connections*: distinct
  TCP connections to its API and account endpoints (not the picture fetches of the fake
  Bot API);
* *CPU per job*: the bot process's user + system time (`/proc/<pid>/stat`) from the moment
  it polls Telegram until every album arrived, divided by the jobs; start-up is shown apart;
  *peak RSS*: `VmHWM` from `/proc/<pid>/status` after the jobs, next to `VmRSS` once the
  bot is polling and before any job (what importing aiogram and the bot costs);
* *updates per second*: N users send `/help` at the same instant (one each, since the bot
  limits floods per user); N divided by the time until the last answer arrived, and the bot's
  CPU time over the burst divided by N;
* the time factor scales the job durations and, by the same factor, the bot's
  `poll_min_interval` (1 s), `poll_max_interval` (10 s), `status_edit_interval` (3 s) and the
  baseline's 2 s poll, so the comparison stays fair; its default, 1, runs the bot on its own
  defaults (a leg takes about 40 s); limits (`max_in_flight`, `per_user_active`,
  `per_user_per_minute`) are raised so the whole load is let in at once;
* the fake's sign-up and refresh answer after `--auth-latency` (0.2 s), as Firebase across
  the internet would; on loopback a sign-up would end before a second job could race it.

Named workloads (`--workload NAME`, `bench/workloads.py`, issue 12): `spread` (queue 0-3 s,
generation 5-20 s, 300 jobs at once), `short` (every job 1.2 s, 300 jobs over 60 s),
`shift` (15 s jobs, then 1.5 s for the second half, 160 jobs over 60 s) and
`shift-reverse`, `failures` (like spread, 10 % fail within 1 s: *failure told after* is from
the failure to the user's notice), `telegram-limits` (1,000 jobs over 500 private chats and
10 groups, the fake Bot API enforcing 30 messages/s per bot, 20/min per group and 1/s per
private chat with 429 + retry_after). Our bot paces its own sends to those limits in every
workload; the baseline is plain aiogram (no pacing), as the bots it stands for are.
The machine's 2 cores are shared with other work while these run: CPU and latency figures
move by tens of percent between runs; ratios are taken within one run.
"""


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    value: Callable[[Result], float]
    digits: int


ROWS: tuple[Row, ...] = (
    Row("jobs completed", lambda r: r.completed, 0),
    Row("jobs failed", lambda r: r.failed, 0),
    Row("delivery after done, median (s)", lambda r: r.delivery_quantile(0.5), 3),
    Row("delivery after done, p95 (s)", lambda r: r.delivery_quantile(0.95), 3),
    Row("delivery after done, max (s)", lambda r: r.delivery_quantile(1.0), 3),
    Row("fakes' own event-loop lag, p95 (s)", lambda r: _quantile(r.fake_lag, 0.95), 3),
    Row("status polls per job", lambda r: r.polls_per_job, 2),
    Row("Bot API requests per job", lambda r: r.api_calls_per_job, 2),
    Row("sign-ups", lambda r: r.signups, 0),
    Row("token refreshes", lambda r: r.refreshes, 0),
    Row("TCP connections to ARTA", lambda r: r.connections, 0),
    Row("bot CPU per job (ms)", lambda r: r.cpu_ms_per_job, 2),
    Row("bot CPU to start (s)", lambda r: r.startup_cpu_seconds, 2),
    Row("bot peak RSS (MiB)", lambda r: r.peak_rss_mb, 1),
    Row("bot RSS when ready, before any job (MiB)", lambda r: r.ready_rss_mb, 1),
    Row("/help updates per second", lambda r: r.updates_per_second, 0),
    Row("bot CPU per /help update (ms)", lambda r: r.burst_cpu_ms_per_update, 2),
    Row("wall time of the leg (s)", lambda r: r.wall_seconds, 1),
)


def workload_rows(name: str) -> tuple[Row, ...]:
    """The figures issue 12 sets targets on for this workload, on top of ROWS."""
    from bench import workloads as w

    half = lambda r: r.jobs // 2  # noqa: E731
    rows = {
        "shift": (
            Row(
                "after the change: delivery median, jobs 1-20 (s)",
                lambda r: w._median(w.after_change(r, 0, 20)),
                3,
            ),
            Row(
                "after the change: delivery median, jobs 21+ (s)",
                lambda r: w._median(w.after_change(r, 20)),
                3,
            ),
        ),
        "shift-reverse": (
            Row(
                "status checks a job, 20 jobs after the change",
                lambda r: w.checks(r, half(r), half(r) + 20),
                2,
            ),
            Row("status checks a job, last 20 jobs", lambda r: w.checks(r, -20, None), 2),
        ),
        "failures": (
            Row("failure told after, median (s)", lambda r: w.failure_quantile(r, 0.5), 3),
            Row("failure told after, p95 (s)", lambda r: w.failure_quantile(r, 0.95), 3),
        ),
        "telegram-limits": (
            Row("429 answers from the Bot API", lambda r: float(r.too_many_requests), 0),
        ),
    }
    return rows.get(name, ())


def table(
    ours: list[Result], baseline: list[Result], extra: tuple[Row, ...] = ()
) -> list[list[str]]:
    """One row per figure: the median over repeats for each bot, and the median of the
    ratios of repeats run back to back (so a slow spell of a shared machine hits both)."""
    rows = [["", "ours", "baseline", "ours/baseline"]]
    for row in (*ROWS, *extra):
        mine = [row.value(r) for r in ours]
        theirs = [row.value(r) for r in baseline]
        ratios = [_ratio_value(a, b) for a, b in zip(mine, theirs, strict=False)]
        rows.append(
            [
                row.label,
                _number(_median(mine), row.digits),
                _number(_median(theirs), row.digits),
                _number(_median(ratios), 2),
            ]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|---|" + "---:|" * (len(rows[0]) - 1)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows[1:])
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    cores = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cores += 1
    except OSError:
        pass
    return f"{model}, {cores} cores, Python {platform.python_version()} ({platform.system()})"


def describe(params: Params) -> str:
    extra = ""
    if params.generation_after is not None:
        extra += f"; second half generation {params.generation_after}"
    if params.fail_share:
        extra += f"; {params.fail_share:.0%} fail within {params.fail_within:g} s"
    if params.groups:
        extra += (
            f"; {params.private_chats} private chats and {params.groups} groups "
            f"({params.group_share:.0%} of jobs)"
        )
    if params.telegram_limits:
        extra += "; the fake Bot API enforces Telegram's flood limits"
    return (
        f"workload {params.workload}{extra}; "
        f"{params.jobs} jobs over {params.bots} bot(s), 1-4 pictures each; queue "
        f"{params.queue}, generation {params.generation}, times x{params.time_factor:g}; "
        f"users send over {params.ramp:g} s; sign-up answers after {params.auth_latency:g} s; "
        f"burst of {params.burst} /help; seed {params.seed}"
    )


def heading(command: str) -> str:
    """A run's section title: the command and the aiogram it ran on (the bot's weight
    depends on it), so runs on different versions sit side by side."""
    return f"## `{command}` (aiogram {_version('aiogram')})"


def section(command: str, params: Params, ours: list[Result], baseline: list[Result]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{name} {_version(name)}" for name in ("aiogram", "aiohttp", "pydantic"))
    return (
        f"{heading(command)}\n\n"
        f"- date: {now}\n"
        f"- machine: {machine()}\n"
        f"- packages: {versions}\n"
        f"- workload: {describe(params)}\n"
        f"- repeats: {len(ours)} (medians; ratios are medians of back-to-back pairs)\n\n"
        f"{markdown_table(table(ours, baseline, workload_rows(params.workload)))}\n"
    )


def write_section(path: Path, command: str, text: str) -> None:
    """Replace the section with `command`'s heading in `path` (or add it), keeping the others
    (hand written ones too); the header before the first section is rewritten."""
    old = path.read_text() if path.exists() else ""
    sections = re.split(r"(?m)^(?=## )", old)
    kept = [s for s in sections[1:] if not s.startswith(f"{heading(command)}\n")]
    body = "\n".join(s.rstrip("\n") + "\n" for s in [*kept, text])
    path.write_text(HEADER + "\n" + body)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio_value(mine: float, theirs: float) -> float:
    if math.isnan(mine) or math.isnan(theirs) or theirs == 0:
        return math.nan
    return mine / theirs


def _median(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else math.nan
