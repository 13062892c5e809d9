"""/stats answers admins with a picture of the last 24 hours and 7 days: jobs, p50/p95
time to result and failures by kind, the numbers in the caption. Pillow is loaded on the
first /stats, not at start."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from pathlib import Path

from bot.storage.interface import JobStore, Storage
from bot.storage.records import JobParams, NewJob, StoredImage
from bot.telegram import texts
from bot.telegram.i18n import make_i18n
from bot.telegram.stats_chart import GREEN, HEIGHT, WIDTH, load_windows, render_png
from tests.bot_steps import wait_jobs
from tests.harness import running_bot

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000.0
HOUR = 3600.0
ADMIN_ID = 4242
PARAMS = JobParams(
    prompt="a fox",
    model="Flux",
    negative_prompt="",
    aspect_ratio="1:1",
    images=1,
    steps=30,
    cfg=7.0,
    seed=None,
)
IMAGE = (StoredImage("https://img.example/1.jpg"),)


async def _seed(repo: JobStore, created: float, outcome: str, seconds: float) -> None:
    job = await repo.create(NewJob(bot_id=1, chat_id=5, user_id=5, params=PARAMS), now=created)
    if outcome == "cancelled":
        await repo.mark_cancelled(job.id, now=created + seconds)
        return
    await repo.mark_submitted(job.id, "rec", now=created + 1)
    if outcome == "done":
        await repo.mark_delivering(job.id, IMAGE, 1, now=created + seconds - 1, polls=3)
        await repo.mark_done(job.id, now=created + seconds)
    else:
        await repo.mark_failed(job.id, outcome, "seeded", now=created + seconds)


async def test_the_numbers_cover_the_last_day_and_week(storage: Storage) -> None:
    repo = storage.jobs
    for hours_ago, seconds in ((1, 10.0), (5, 20.0), (23, 30.0), (72, 40.0)):
        await _seed(repo, NOW - hours_ago * HOUR, "done", seconds)
    await _seed(repo, NOW - 2 * HOUR, "timeout", 300)
    await _seed(repo, NOW - 100 * HOUR, "unavailable", 5)
    await _seed(repo, NOW - 8 * 24 * HOUR, "done", 99)  # older than a week: left out

    day, week = await load_windows(repo, NOW)

    assert (day.jobs, day.p50, day.failures) == (4, 20.0, (("timeout", 1),))
    assert len(day.buckets) == 24
    # Hourly, oldest first: the last bucket is the hour before now.
    assert day.buckets[-1].done == 1 and day.buckets[-2].failed == (("timeout", 1),)
    assert (week.jobs, week.p50) == (6, 25.0)
    assert week.failures == (("timeout", 1), ("unavailable", 1))
    assert len(week.buckets) == 28


async def test_stats_picture_renders_a_week_of_seeded_jobs(
    storage: Storage, tmp_path: Path
) -> None:
    repo = storage.jobs
    rng = random.Random(15)
    kinds = ("timeout", "unavailable", "failed", "image")
    for hour in range(24 * 7):
        busy = 1 + (hour % 24 < 10) * 2  # a quieter night
        for _ in range(busy):
            created = NOW - (hour + rng.random()) * HOUR
            roll = rng.random()
            outcome = "done" if roll < 0.8 else "cancelled" if roll < 0.85 else rng.choice(kinds)
            await _seed(repo, created, outcome, rng.uniform(8, 40 + hour % 24 * 2))
    day, week = await load_windows(repo, NOW)

    png = render_png(day, week)

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))
    colours = {colour for _, colour in image.convert("RGB").getcolors(1 << 20)}
    assert tuple(int(GREEN[i : i + 2], 16) for i in (1, 3, 5)) in colours, "no done bars"
    artifact = tmp_path / "stats.png"
    artifact.write_bytes(png)
    print(f"/stats picture: {artifact}")


async def test_admin_gets_the_picture_with_its_numbers_as_the_caption(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"admin_ids": [ADMIN_ID]}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a charted fox --model flux")
        (job,) = await wait_jobs(stack, user, finished=1)
        admin = stack.user(ADMIN_ID, first_name="Root")
        admin_chat = stack.tg.private_chat(admin)
        stack.tg.send_text(stack.bot, admin_chat, admin, "/stats")
        picture = await stack.wait_photo(admin_chat)

    assert picture.file is not None and picture.file.source == "upload"
    assert (picture.file.width, picture.file.height) == (WIDTH, HEIGHT)
    assert job.finished_at is not None
    seconds = job.finished_at - job.created_at
    i18n = make_i18n()
    with i18n.context(), i18n.use_locale("en"):
        expected = texts.stats_chart_caption(
            day_jobs=1,
            day_p50=seconds,
            day_p95=seconds,
            week_jobs=1,
            week_p50=seconds,
            week_p95=seconds,
            week_failures="",
        )
    assert _plain(picture.caption) == _plain(expected)


def _plain(html: str | None) -> str:
    # The fake keeps captions as Telegram shows them: tags become entities.
    for tag in ("<b>", "</b>"):
        html = (html or "").replace(tag, "")
    return html or ""


def test_start_up_leaves_the_plotting_library_unloaded() -> None:
    # In a fresh interpreter: this one may have rendered a picture already.
    code = (
        "import sys, bot.app, bot.telegram.routers.admin, bot.telegram.stats_chart\n"
        "assert 'PIL' not in sys.modules, 'Pillow imported at start'\n"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "ok", result.stderr
