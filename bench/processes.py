"""`python -m bench --processes 1,2,4 [--kill]`: several bot processes on one PostgreSQL.

The bench starts its own PostgreSQL server (as the tests do), the fake Bot API and fake
ARTA, and N `python -m bot` processes in webhook mode on one database. A small load
balancer here takes each update the fake Bot API queues for the webhook and POSTs it to
the processes in turn (the next one when a process does not answer, as a load balancer
with health checks does). Whichever process received an /imagine, any of them may claim
the job (bot/jobs/claiming.py).

Figures per process count: every job delivered exactly once (albums per chat), ARTA
submissions per prompt, sign-ups, status polls per job, delivery latency (from ARTA's
"done" to the album), throughput, and the bots' CPU. `--kill`: 3 processes, one killed
with SIGKILL once a third of the jobs are delivered; how long until another process took
its jobs, and how many albums went out twice (the at-least-once window: a process killed
after sending an album and before writing it down).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.run import (
    ApiOnlyArta,
    CallWatcher,
    Params,
    _clean_environ,
    _play_jobs,
    plan_jobs,
    process_cpu_seconds,
)
from tests.bot_process import ROOT
from tests.fakes.arta_server import API_PATH, REFRESH_PATH, SIGNUP_PATH
from tests.fakes.telegram_api import FakeBot, FakeTelegram
from tests.postgres_server import start_server

SECRET = "bench-webhook-secret"
PREFIX = "/telegram"


@dataclass(slots=True)
class ClusterResult:
    processes: int
    jobs: int
    delivered: int = 0
    duplicate_albums: int = 0
    resubmitted: int = 0
    signups: int = 0
    status_polls: int = 0
    delivery: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    killed: bool = False
    takeover_seconds: float | None = None
    lease_seconds: float = 0.0
    # Albums each process sent ("event=done" in its log): the work is shared.
    done_by_process: list[int] = field(default_factory=list)
    # CPU of this process (fake Bot API, fake ARTA, balancer): on loopback it can be the
    # limit rather than the bots, and then more bot processes cannot go faster.
    fakes_cpu_seconds: float = 0.0
    # Jobs saved in the database: fewer than the /imagine sent when a killed process had
    # answered Telegram for updates it had not saved yet (before issue 11's fix, webhook
    # mode answered at once).
    saved: int = 0
    # 429 answers of the fake Bot API (with --workload telegram-limits: its limits are on).
    too_many_requests: int = 0

    @property
    def throughput(self) -> float:
        return self.delivered / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def delivery_p50(self) -> float:
        return statistics.median(self.delivery) if self.delivery else float("nan")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(
    path: Path, tg: FakeTelegram, arta: ApiOnlyArta, token: str, **extra: Any
) -> Path:
    tables: dict[str, dict[str, Any]] = {
        "telegram": {"tokens": token, "api_url": tg.base_url},
        "arta": {
            "auth_url": f"{arta.base_url}{SIGNUP_PATH}",
            "refresh_url": f"{arta.base_url}{REFRESH_PATH}",
            "api_url": f"{arta.base_url}{API_PATH}",
            "poll_min_interval": 0.05,
            "poll_max_interval": 0.5,
        },
        "limits": {
            "max_in_flight": 200,
            "per_user_active": 4,
            "per_user_per_minute": 60,
            "status_edit_interval": 0.5,
        },
        "log": {"level": "INFO"},
    }
    for name, values in extra.items():
        tables.setdefault(name, {}).update(values)
    lines = ['mode = "webhook"', ""]
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class Balancer:
    """Round-robin delivery of the fake's queued updates to the live processes, up to
    `CONNECTIONS` at a time per bot, as Telegram does (setWebhook's max_connections, 40 by
    default). A process answers an update once what it asked for is saved, which can take
    seconds under load; one update at a time would measure this balancer, not the bots."""

    CONNECTIONS = 40

    def __init__(self, bots: list[FakeBot], ports: list[int]) -> None:
        self._bots = bots
        self.ports = list(ports)
        self._next = 0
        self.sent = 0
        self.in_flight = 0

    @property
    def idle(self) -> bool:
        """Nothing queued at the fake and nothing on its way to a process."""
        return self.in_flight == 0 and not any(bot.pending_updates for bot in self._bots)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        slots = {bot.id: asyncio.Semaphore(self.CONNECTIONS) for bot in self._bots}
        tasks: set[asyncio.Task[None]] = set()
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                while True:
                    waiting = [bot for bot in self._bots if bot.pending_updates]
                    if not waiting:
                        await asyncio.sleep(0.005)
                        continue
                    for bot in waiting:
                        await slots[bot.id].acquire()
                        self.in_flight += 1
                        task = asyncio.create_task(
                            self._deliver(http, bot, bot.pending_updates.pop(0), slots[bot.id])
                        )
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(
        self,
        http: aiohttp.ClientSession,
        bot: FakeBot,
        update: dict[str, Any],
        slot: asyncio.Semaphore,
    ) -> None:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        try:
            while True:
                port = self.ports[self._next % len(self.ports)]
                self._next += 1
                url = f"http://127.0.0.1:{port}{PREFIX}/{bot.id}"
                try:
                    async with http.post(url, json=update, headers=headers) as response:
                        if response.status == 200:
                            self.sent += 1
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.01)  # Telegram retries too; try the next process
        finally:
            self.in_flight -= 1
            slot.release()


async def run_cluster(
    processes: int, params: Params, workdir: Path, *, kill: bool = False, lease: float = 30.0
) -> ClusterResult:
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before anything runs
    plans = plan_jobs(params)
    result = ClusterResult(processes=processes, jobs=len(plans), killed=kill, lease_seconds=lease)
    server = await asyncio.to_thread(start_server)
    children: list[asyncio.subprocess.Process] = []
    logs = []
    try:
        url = await server.create_database()
        async with (
            ApiOnlyArta(auth_latency=params.auth_latency) as arta,
            FakeTelegram(clock=time.time) as tg,
        ):
            tokens = [f"{7_000_000_001 + n}:BENCH{'x' * 30}{n:05d}" for n in range(params.bots)]
            bots = [tg.add_bot(t, f"bench{n}_bot") for n, t in enumerate(tokens)]
            token = ",".join(tokens)
            ports = [_free_port() for _ in range(processes)]
            for n, port in enumerate(ports):
                folder = workdir / f"p{n}"
                folder.mkdir(exist_ok=True)
                config = _write_config(
                    folder / "config.toml",
                    tg,
                    arta,
                    token,
                    database={"url": url, "lease_seconds": lease},
                    webhook={
                        "base_url": "https://bench.invalid",
                        "path_prefix": PREFIX,
                        "secret": SECRET,
                        "host": "127.0.0.1",
                        "port": port,
                    },
                )
                log = (folder / "bot.log").open("wb")
                logs.append(log)
                children.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "bot", "--config", str(config),
                        cwd=folder,
                        env={**_clean_environ(), "PYTHONPATH": str(ROOT)},
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=log,
                    )
                )  # fmt: skip
            await _until(lambda: _webhooks_up(workdir, processes), 90, "every process to serve")
            if params.telegram_limits:
                tg.enforce_telegram_limits()
            watcher = CallWatcher(tg)
            balancer = Balancer(bots, ports)
            feeding = asyncio.create_task(balancer.run())
            cpu_before = sum(process_cpu_seconds(c.pid) for c in children)
            started = time.monotonic()
            fakes_cpu = time.process_time()
            await _play_jobs(tg, arta, bots, plans, params)
            if kill:
                victim = children[0]
                await _until(lambda: watcher.scan() >= len(plans) // 3, 300, "a third delivered")
                pid = victim.pid
                victim.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                balancer.ports = ports[1:]
                result.cpu_seconds += process_cpu_seconds_or_zero(pid)
                result.takeover_seconds = await _takeover(url, pid, killed_at)
            due = max(p.queue_seconds + p.generation_seconds for p in plans)
            result.saved = await _wait_delivered(
                url, watcher, balancer, len(plans), due + 300 + lease
            )
            result.wall_seconds = time.monotonic() - started
            result.fakes_cpu_seconds = time.process_time() - fakes_cpu
            live = [c for c in children if c.returncode is None]
            result.cpu_seconds += sum(process_cpu_seconds(c.pid) for c in live) - cpu_before
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
            _collect(result, tg, arta, plans, watcher)
            result.too_many_requests = tg.too_many_requests
            result.done_by_process = [
                (workdir / f"p{n}" / "bot.log").read_text(errors="replace").count("event=done")
                for n in range(processes)
            ]
    finally:
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                async with asyncio.timeout(20):
                    await child.wait()
            except TimeoutError:
                child.kill()
                await child.wait()
        for log in logs:
            log.close()
        await asyncio.to_thread(server.stop)
    return result


def process_cpu_seconds_or_zero(pid: int) -> float:
    try:
        return process_cpu_seconds(pid)
    except OSError:
        return 0.0


async def _wait_delivered(
    url: str, watcher: CallWatcher, balancer: Balancer, sent: int, within: float
) -> int:
    """Wait until every saved job's album arrived (and no update is still on its way);
    return how many jobs were saved."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        deadline = time.monotonic() + within
        saved = 0
        while time.monotonic() < deadline:
            saved = int(await conn.fetchval("SELECT COUNT(*) FROM jobs"))
            unfinished = await conn.fetchval(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'submitted', 'delivering')"
            )
            settled = unfinished == 0 and watcher.scan() >= saved > 0 and balancer.idle
            if watcher.scan() >= sent or settled:
                # Settled: give a straggling update a moment, then count once more.
                await asyncio.sleep(2.0)
                if int(await conn.fetchval("SELECT COUNT(*) FROM jobs")) == saved:
                    return saved
            await asyncio.sleep(0.25)
        return saved
    finally:
        await conn.close()


async def _takeover(url: str, pid: int, killed_at: float) -> float | None:
    """Seconds from the kill until no unfinished job is held by the dead process."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        worker = await conn.fetchval("SELECT id FROM bot_workers WHERE pid = $1", pid)
        if worker is None:
            return None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            held = await conn.fetchval(
                "SELECT COUNT(*) FROM jobs WHERE owner = $1"
                " AND state IN ('queued', 'submitted', 'delivering')",
                worker,
            )
            if held == 0:
                return time.monotonic() - killed_at
            await asyncio.sleep(0.1)
        return None
    finally:
        await conn.close()


def _webhooks_up(workdir: Path, processes: int) -> bool:
    return all(
        "webhook server listening" in (workdir / f"p{n}" / "bot.log").read_text(errors="replace")
        for n in range(processes)
    )


async def _until(check: Any, within: float, what: str, *, fail: bool = True) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() >= deadline:
            if fail:
                raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")
            return
        await asyncio.sleep(0.05)


def _collect(
    result: ClusterResult,
    tg: FakeTelegram,
    arta: ApiOnlyArta,
    plans: list[Any],
    watcher: CallWatcher,
) -> None:
    albums = Counter(
        c.params.get("chat_id")
        for c in tg.api_calls
        if c.ok and c.method.lower() in {"sendmediagroup", "sendphoto"}
    )
    submits = Counter(record.prompt for record in arta.records.values())
    records = {record.prompt: record for record in arta.records.values()}
    for plan in plans:
        arrived = watcher.delivered.get(plan.index)
        record = records.get(plan.prompt)
        if arrived is None or record is None:
            continue
        result.delivered += 1
        done_at = (
            record.created_at + record.script.queue_seconds + record.script.generation_seconds
        )
        result.delivery.append(arrived - done_at)
    # Albums past the jobs each chat asked for (telegram-limits puts two jobs in a chat).
    asked = Counter(plan.chat_id or plan.user_id for plan in plans)
    result.duplicate_albums = sum(max(0, n - asked[chat]) for chat, n in albums.items())
    result.resubmitted = sum(n - 1 for n in submits.values() if n > 1)
    result.signups = arta.signups
    result.status_polls = arta.total_status_polls


def report(results: list[ClusterResult]) -> str:
    lines = [
        "| processes | saved/sent | delivered | dup. albums | resubmits | sign-ups | polls/job |"
        " p50 delivery s | jobs/s | bot CPU s | fakes CPU s | takeover s | done per process |"
        " 429s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        takeover = (
            f"{r.takeover_seconds:.1f} (lease {r.lease_seconds:g})"
            if r.takeover_seconds is not None
            else "-"
        )
        name = f"{r.processes}{' (1 killed)' if r.killed else ''}"
        lines.append(
            f"| {name} | {r.saved}/{r.jobs} | {r.delivered}/{r.saved} |"
            f" {r.duplicate_albums} | {r.resubmitted} |"
            f" {r.signups} | {r.status_polls / max(r.jobs, 1):.1f} | {r.delivery_p50:.2f} |"
            f" {r.throughput:.1f} | {r.cpu_seconds:.1f} | {r.fakes_cpu_seconds:.1f} |"
            f" {takeover} |"
            f" {'/'.join(str(n) for n in r.done_by_process)} |"
            f" {r.too_many_requests} |"
        )
    return "\n".join(lines)


async def run_all(
    counts: list[int], params: Params, workdir: Path, *, kill: bool, repeat: int
) -> list[ClusterResult]:
    results: list[ClusterResult] = []
    for round_ in range(repeat):
        for count in counts:
            print(f"processes={count} round {round_ + 1}: {params.jobs} jobs", flush=True)
            results.append(await run_cluster(count, params, workdir / f"n{count}-{round_}"))
            print(report(results[-1:]), flush=True)
        if kill:
            print(f"kill one of 3, round {round_ + 1}: {params.jobs} jobs", flush=True)
            results.append(await run_cluster(3, params, workdir / f"kill-{round_}", kill=True))
            print(report(results[-1:]), flush=True)
    return results
