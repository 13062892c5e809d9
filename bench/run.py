"""One benchmark leg: fresh fakes, the real bot process pointed at them, the workload, figures.

The fake ARTA and the fake Bot API run in this process on 127.0.0.1; the bot runs as
`python -m bot --config ...` (or the baseline entry point) in its own process, so its CPU
time and memory are its own and can be read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.bot_process import ROOT
from tests.fakes.arta_server import API_PATH, REFRESH_PATH, SIGNUP_PATH, FakeArta, RecordScript
from tests.fakes.telegram_api import ApiCall, FakeBot, FakeTelegram

# The bot's own defaults that are timings; the benchmark scales them with the workload.
DEFAULT_POLL_MIN_INTERVAL = 1.0
DEFAULT_POLL_MAX_INTERVAL = 10.0
DEFAULT_STATUS_EDIT_INTERVAL = 3.0
GPT4FREE_POLL_SECONDS = 2.0
DELIVERY_METHODS = {"sendmediagroup", "sendphoto", "senddocument"}
USER_BASE_ID = 10_000
BURST_USER_BASE_ID = 5_000_000
GROUP_BASE_ID = -1_000_000_001
# How texts.failed() starts in every locale.
FAILURE_MARK = "⚠️"
_JOB_RE = re.compile(r"bench job (\d+) ")


@dataclass(frozen=True, slots=True)
class Distribution:
    """Seconds drawn per job: `uniform:A:B`, `const:X` or `expo:MEAN`."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Distribution:
        kind, _, rest = text.partition(":")
        numbers = [float(part) for part in rest.split(":") if part]
        if kind == "uniform" and len(numbers) == 2 and 0 <= numbers[0] <= numbers[1]:
            return cls(kind, numbers[0], numbers[1])
        if kind in {"const", "expo"} and len(numbers) == 1 and numbers[0] >= 0:
            return cls(kind, numbers[0])
        raise ValueError(f"not a distribution: {text!r} (uniform:A:B, const:X or expo:MEAN)")

    def draw(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "expo":
            return rng.expovariate(1 / self.a) if self.a > 0 else 0.0
        return self.a

    def __str__(self) -> str:
        if self.kind == "uniform":
            return f"uniform {self.a:g}-{self.b:g} s"
        return f"{self.kind} {self.a:g} s"


@dataclass(frozen=True, slots=True)
class Params:
    jobs: int = 500
    bots: int = 1
    time_factor: float = 1.0
    queue: Distribution = Distribution("uniform", 0.0, 3.0)
    generation: Distribution = Distribution("uniform", 5.0, 20.0)
    burst: int = 1000
    # Seconds over which the users send their /imagine (0: all at once).
    ramp: float = 0.0
    seed: int = 1
    # Extra seconds allowed past the slowest job's due time before the rest count as failed.
    grace: float = 30.0
    # Seconds the fake's sign-up and refresh take to answer: Firebase is across the internet,
    # and on loopback a sign-up would finish before a second job could race it.
    auth_latency: float = 0.2
    # The named workload these parameters come from (bench/workloads.py).
    workload: str = "custom"
    # The second half of the jobs draws its generation time from here (a service that
    # changes speed half way); None: like the first half.
    generation_after: Distribution | None = None
    # This share of jobs fails (FAILED status) within `fail_within` seconds of submission.
    fail_share: float = 0.0
    fail_within: float = 1.0
    # Jobs share this many private chats (0: one chat per job), and this share of jobs is
    # sent in `groups` group chats instead.
    private_chats: int = 0
    groups: int = 0
    group_share: float = 0.0
    # The fake Bot API enforces Telegram's flood limits (429 + retry_after).
    telegram_limits: bool = False


@dataclass(frozen=True, slots=True)
class JobPlan:
    index: int
    bot: int
    user_id: int
    prompt: str
    images: int
    queue_seconds: float
    generation_seconds: float
    fails: bool = False
    # Negative for a group chat, as Telegram numbers them.
    chat_id: int = 0

    @property
    def ends_at(self) -> float:
        return self.queue_seconds + self.generation_seconds


@dataclass(slots=True)
class Result:
    name: str
    jobs: int
    completed: int = 0
    failed: int = 0
    delivery: list[float] = field(default_factory=list)
    status_polls: int = 0
    signups: int = 0
    refreshes: int = 0
    connections: int = 0
    cpu_seconds: float = 0.0
    startup_cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    ready_rss_mb: float = 0.0
    burst_cpu_seconds: float = 0.0
    # How late this process's own event loop ran (the fakes live here): seconds past due.
    fake_lag: list[float] = field(default_factory=list)
    burst: int = 0
    burst_answered: int = 0
    burst_seconds: float = 0.0
    wall_seconds: float = 0.0
    exit_code: int | None = None
    # Bot API requests during the jobs (getUpdates aside), by method.
    api_calls: Counter[str] = field(default_factory=Counter)
    # 429 answers of the fake Bot API during the jobs.
    too_many_requests: int = 0
    # Per job, in submission order: delivery after done (None if not delivered; for a
    # failing job, from its failure to the user being told), status checks, whether it fails.
    per_job: list[tuple[float | None, int, bool]] = field(default_factory=list)
    # For jobs that fail: seconds from the failure to the user being told.
    failure_told: list[float] = field(default_factory=list)

    @property
    def polls_per_job(self) -> float:
        return self.status_polls / self.jobs if self.jobs else 0.0

    @property
    def api_calls_per_job(self) -> float:
        return sum(self.api_calls.values()) / self.jobs if self.jobs else 0.0

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.cpu_seconds / self.jobs if self.jobs else 0.0

    @property
    def burst_cpu_ms_per_update(self) -> float:
        return 1000 * self.burst_cpu_seconds / self.burst_answered if self.burst_answered else 0.0

    @property
    def updates_per_second(self) -> float:
        return self.burst_answered / self.burst_seconds if self.burst_seconds > 0 else 0.0

    def delivery_quantile(self, q: float) -> float:
        if not self.delivery:
            return float("nan")
        ordered = sorted(self.delivery)
        if q >= 1:
            return ordered[-1]
        if q == 0.5:
            return statistics.median(ordered)
        return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def plan_jobs(params: Params) -> list[JobPlan]:
    """The same workload for every leg: one user and one unique prompt per job."""
    rng = random.Random(params.seed)
    plans = []
    private = 0
    half = params.jobs // 2
    group_every = round(1 / params.group_share) if params.group_share > 0 else 0
    for index in range(params.jobs):
        images = rng.randint(1, 4)
        queue = params.queue.draw(rng) * params.time_factor
        generation_source = params.generation
        if params.generation_after is not None and index >= half:
            generation_source = params.generation_after
        generation = generation_source.draw(rng) * params.time_factor
        fails = False
        if params.fail_share > 0 and rng.random() < params.fail_share:
            fails = True
            queue = 0.0
            generation = rng.uniform(0.1, params.fail_within) * params.time_factor
        user_id = USER_BASE_ID + index
        chat_id = user_id
        if group_every and params.groups and index % group_every == group_every - 1:
            chat_id = GROUP_BASE_ID - (index // group_every) % params.groups
        elif params.private_chats:
            user_id = USER_BASE_ID + private % params.private_chats
            chat_id = user_id
            private += 1
        plans.append(
            JobPlan(
                index=index,
                bot=index % params.bots,
                user_id=user_id,
                prompt=f"bench job {index} a lighthouse on a cliff at dusk",
                images=images,
                queue_seconds=queue,
                generation_seconds=generation,
                fails=fails,
                chat_id=chat_id,
            )
        )
    return plans


def bot_command(kind: str, config: Path, params: Params) -> list[str]:
    """The production entry point, or the same app on the gpt4free-style client."""
    # BENCH_CPROFILE=DIR: run the bot under cProfile, stats in DIR/<kind>.prof (on exit).
    profile = os.environ.get("BENCH_CPROFILE")
    python = [sys.executable]
    if profile:
        python += ["-m", "cProfile", "-o", str(Path(profile) / f"{kind}.prof")]
    if kind == "ours":
        return [*python, "-m", "bot", "--config", str(config)]
    interval = GPT4FREE_POLL_SECONDS * params.time_factor
    return [
        *python,
        "-m",
        "bench.baseline_bot",
        "--config",
        str(config),
        "--poll-interval",
        f"{interval:g}",
    ]


def write_bench_config(
    path: Path, tg: FakeTelegram, arta: FakeArta, tokens: tuple[str, ...], params: Params
) -> Path:
    """The test config aimed at the fakes, plus limits that let the whole load in at once
    and the bot's timing defaults scaled by the time factor like the jobs themselves."""
    factor = params.time_factor
    sections: dict[str, dict[str, Any]] = {
        "arta": {
            "poll_min_interval": DEFAULT_POLL_MIN_INTERVAL * factor,
            "poll_max_interval": DEFAULT_POLL_MAX_INTERVAL * factor,
        },
        "limits": {
            "max_in_flight": params.jobs + params.burst,
            "per_user_active": 8,
            "per_user_per_minute": 120,
            "status_edit_interval": DEFAULT_STATUS_EDIT_INTERVAL * factor,
        },
        "log": {"level": "INFO"},
    }
    tables: dict[str, dict[str, Any]] = {
        "telegram": {"tokens": ",".join(tokens), "api_url": tg.base_url},
        "arta": {
            "auth_url": f"{arta.base_url}{SIGNUP_PATH}",
            "refresh_url": f"{arta.base_url}{REFRESH_PATH}",
            "api_url": f"{arta.base_url}{API_PATH}",
            **sections.pop("arta"),
        },
        "database": {"path": str(path.parent / "bot.db")},
        **sections,
    }
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        # JSON strings and numbers are valid TOML values.
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


async def run_leg(
    kind: str, params: Params, workdir: Path, progress: Callable[[str], None] = print
) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before anything runs
    plans = plan_jobs(params)
    result = Result(name=kind, jobs=params.jobs)
    started = time.monotonic()
    async with (
        ApiOnlyArta(auth_latency=params.auth_latency) as arta,
        FakeTelegram(clock=time.time) as tg,
    ):
        if params.telegram_limits:
            tg.enforce_telegram_limits()
        tokens = tuple(f"{7_000_000_001 + n}:BENCH{'x' * 30}{n:05d}" for n in range(params.bots))
        fake_bots = [tg.add_bot(t, f"bench{n}_bot") for n, t in enumerate(tokens)]
        config = write_bench_config(workdir / "config.toml", tg, arta, tokens, params)
        watcher = CallWatcher(tg)
        log_file = (workdir / "bot.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            *bot_command(kind, config, params),
            cwd=workdir,
            env={**_clean_environ(), "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            await _wait(
                lambda: all(watcher.polled(bot) for bot in fake_bots),
                process,
                within=60,
                what="the bot to start polling",
            )
            cpu_ready = process_cpu_seconds(process.pid)
            split_ready = process_cpu_split(process.pid)
            result.startup_cpu_seconds = cpu_ready
            result.ready_rss_mb = process_memory_mb(process.pid, "VmRSS")
            progress(
                f"{kind}: bot ready ({cpu_ready:.2f} s CPU to start); sending {len(plans)} jobs"
            )
            lag_monitor = asyncio.create_task(_watch_lag(result.fake_lag))
            await _play_jobs(tg, arta, fake_bots, plans, params)
            due = time.time() + max(p.ends_at for p in plans)
            expected = sum(not p.fails for p in plans)
            await _wait(
                lambda: watcher.scan() >= expected and watcher.told_all(plans),
                process,
                within=due - time.time() + params.grace,
                what="every album",
                fail=False,
            )
            lag_monitor.cancel()
            result.cpu_seconds = process_cpu_seconds(process.pid) - cpu_ready
            user, system = (
                now - then
                for now, then in zip(process_cpu_split(process.pid), split_ready, strict=True)
            )
            progress(f"{kind}: CPU on the jobs {user:.2f} s user + {system:.2f} s system")
            result.peak_rss_mb = process_memory_mb(process.pid, "VmHWM")
            _collect_jobs(result, arta, plans, watcher)
            result.api_calls = Counter(
                c.method for c in tg.api_calls if c.method.lower() != "getupdates"
            )
            result.too_many_requests = tg.too_many_requests
            calls = ", ".join(f"{m} {n}" for m, n in result.api_calls.most_common())
            progress(f"{kind}: {result.completed}/{len(plans)} delivered; Bot API: {calls}")
            progress(f"{kind}: {params.burst} /help updates at once")
            cpu_jobs = process_cpu_seconds(process.pid)
            await _help_burst(result, tg, fake_bots, watcher, process, params)
            result.burst_cpu_seconds = process_cpu_seconds(process.pid) - cpu_jobs
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(20):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
            log_file.close()
        result.exit_code = process.returncode
        result.status_polls = arta.total_status_polls
        result.signups = arta.signups
        result.refreshes = arta.refreshes
        result.connections = len(arta.api_transports)
    result.wall_seconds = time.monotonic() - started
    return result


async def _play_jobs(
    tg: FakeTelegram,
    arta: FakeArta,
    fake_bots: list[FakeBot],
    plans: list[JobPlan],
    params: Params,
) -> None:
    pause = params.ramp / len(plans) if plans and params.ramp > 0 else 0.0
    started = time.monotonic()
    for plan in plans:
        arta.scripts_by_prompt[plan.prompt] = RecordScript(
            queue_polls=0,
            progress_polls=0,
            queue_seconds=plan.queue_seconds,
            generation_seconds=plan.generation_seconds,
            outcome="failed" if plan.fails else "done",
        )
        user = tg.users.get(plan.user_id) or tg.user(plan.user_id, f"User{plan.index}")
        bot = fake_bots[plan.bot]
        text = f"/imagine {plan.prompt} --model flux -n {plan.images}"
        if plan.chat_id < 0:
            chat = tg.chats.get(plan.chat_id) or tg.group(plan.chat_id, f"Group {plan.chat_id}")
            chat.members.add(user.id)
            text = f"/imagine@{bot.username} {plan.prompt} --model flux -n {plan.images}"
        else:
            chat = tg.private_chat(user)
        tg.send_text(bot, chat, user, text)
        if pause:
            # On a schedule rather than sleep-per-job, so a slow loop does not stretch the ramp.
            due = started + pause * (plan.index + 1)
            await asyncio.sleep(max(0.0, due - time.monotonic()))


def _collect_jobs(
    result: Result, arta: FakeArta, plans: list[JobPlan], watcher: CallWatcher
) -> None:
    records = {record.prompt: record for record in arta.records.values()}
    for plan in plans:
        record = records.get(plan.prompt)
        polls = arta.status_polls.get(record.record_id, 0) if record is not None else 0
        # When the fake's clock says the job ended, not when a poll noticed it.
        ended_at = (
            record.created_at + record.script.queue_seconds + record.script.generation_seconds
            if record is not None
            else None
        )
        if plan.fails:
            told = watcher.told.get(plan.chat_id)
            latency = told - ended_at if told is not None and ended_at is not None else None
            result.per_job.append((latency, polls, True))
            if latency is not None:
                result.failure_told.append(latency)
            continue
        arrived = watcher.delivered.get(plan.index)
        if arrived is None or ended_at is None:
            result.failed += 1
            result.per_job.append((None, polls, False))
            continue
        result.completed += 1
        result.delivery.append(arrived - ended_at)
        result.per_job.append((arrived - ended_at, polls, False))


async def _help_burst(
    result: Result,
    tg: FakeTelegram,
    fake_bots: list[FakeBot],
    watcher: CallWatcher,
    process: asyncio.subprocess.Process,
    params: Params,
) -> None:
    """N users send /help at the same moment; time until the N answers have arrived."""
    result.burst = params.burst
    if not params.burst:
        return
    chats = set()
    sent_at = time.time()
    for n in range(params.burst):
        user = tg.user(BURST_USER_BASE_ID + n, f"Burst{n}")
        chat = tg.private_chat(user)
        chats.add(chat.id)
        tg.send_text(fake_bots[n % len(fake_bots)], chat, user, "/help")

    def answered() -> bool:
        watcher.scan()
        return len(chats & watcher.answered.keys()) >= len(chats)

    await _wait(answered, process, within=60, what="every /help answer", fail=False)
    times = [watcher.answered[c] for c in chats if c in watcher.answered]
    result.burst_answered = len(times)
    result.burst_seconds = (max(times) - sent_at) if times else 0.0


async def _watch_lag(lags: list[float], period: float = 0.05) -> None:
    """Record how late a short sleep wakes up: when the fakes' own loop is behind, an
    arriving album is stamped late too, and the delivery figures include that lag."""
    while True:
        due = time.monotonic() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, time.monotonic() - due))


class ApiOnlyArta(FakeArta):
    """The fake ARTA, counting only connections to the API and the account service: the
    fake Bot API fetches result pictures from it too, and those are not the bot's."""

    def __init__(self, *, auth_latency: float = 0.0) -> None:
        super().__init__(clock=time.time)
        self.api_transports: set[object] = set()
        self._auth_latency = auth_latency

    async def _signup(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self._auth_latency)
        return await super()._signup(request)

    async def _refresh(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self._auth_latency)
        return await super()._refresh(request)

    @web.middleware
    async def _track_connection(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith("/images/"):
            self.api_transports.add(request.transport)
        return await handler(request)


class CallWatcher:
    """Reads the fake Bot API's call log incrementally: each job's first picture (by the job
    number in its caption), the first failure notice and first text message per chat, and
    which bots are polling."""

    def __init__(self, tg: FakeTelegram) -> None:
        self._tg = tg
        self._next = 0
        self._pending: list[ApiCall] = []
        self.delivered: dict[int, float] = {}
        self.answered: dict[int, float] = {}
        self.told: dict[int, float] = {}
        self._polling: set[int] = set()

    def polled(self, bot: FakeBot) -> bool:
        self.scan()
        return bot.id in self._polling

    def told_all(self, plans: list[JobPlan]) -> bool:
        return all(plan.chat_id in self.told for plan in plans if plan.fails)

    def scan(self) -> int:
        """Read the calls made since the last scan; returns the number of deliveries."""
        calls = self._tg.api_calls
        fresh = calls[self._next :]
        self._next = len(calls)
        pending, self._pending = self._pending + fresh, []
        for call in pending:
            method = call.method.lower()
            if method == "getupdates":
                if call.bot_id is not None:
                    self._polling.add(call.bot_id)
                continue
            if call.ok is None:
                self._pending.append(call)
                continue
            if not call.ok:
                continue
            chat_id = call.params.get("chat_id")
            if not isinstance(chat_id, int):
                continue
            if method in DELIVERY_METHODS:
                index = _job_index(call)
                if index is not None:
                    self.delivered.setdefault(index, call.at)
            elif method in {"sendmessage", "editmessagetext"}:
                text = call.params.get("text")
                if isinstance(text, str) and text.startswith(FAILURE_MARK):
                    self.told.setdefault(chat_id, call.at)
                if method == "sendmessage":
                    self.answered.setdefault(chat_id, call.at)
        return len(self.delivered)


def _job_index(call: ApiCall) -> int | None:
    caption = call.params.get("caption")
    media = call.params.get("media")
    if caption is None and media is not None:
        items = json.loads(media) if isinstance(media, str) else media
        if isinstance(items, list) and items and isinstance(items[0], dict):
            caption = items[0].get("caption")
    found = _JOB_RE.search(caption) if isinstance(caption, str) else None
    return int(found[1]) if found else None


async def _wait(
    predicate: Callable[[], bool],
    process: asyncio.subprocess.Process,
    *,
    within: float,
    what: str,
    fail: bool = True,
) -> None:
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited ({process.returncode}) while waiting for {what}")
        if time.monotonic() >= deadline:
            if fail:
                raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")
            return
        await asyncio.sleep(0.05)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc/<pid>/stat."""
    return sum(process_cpu_split(pid))


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a live process: time in the kernel (sockets, epoll)
    is part of what a request costs and invisible to cProfile."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "(comm) ".
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def process_memory_mb(pid: int, field: str) -> float:
    """A memory figure of a live process from /proc/<pid>/status (VmRSS, VmHWM: peak), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _clean_environ() -> dict[str, str]:
    # Only the config file may steer the bot: no BOT_TOKEN or ARTA_* from the caller's shell.
    from bot.config import ENVIRONMENT_KEYS

    return {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_KEYS}
