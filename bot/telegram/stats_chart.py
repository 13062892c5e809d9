"""The /stats picture: jobs, p50/p95 time to result and failures by kind, over the last
24 hours (hourly) and 7 days (six-hourly), drawn with Pillow.

Pillow is imported inside `render_png` only: an idle bot never pays for it (the first
/stats costs ~10 MB and ~50 ms once), and tests check that start-up leaves it out.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.storage.interface import JobStore
from bot.storage.jobs_repo import percentile
from bot.storage.records import JobTimeline

HOUR = 3600.0
FAILED = "failed"
DONE = "done"
WIDTH, HEIGHT = 1000, 800
# Colour-blind-safe (Okabe-Ito), one per failure kind in order of first appearance.
PALETTE = ("#D55E00", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#0072B2", "#999999")
Box = tuple[float, float, float, float]
# PIL's ImageDraw and font are typed Any here: PIL is imported only inside render_png.
Parts = Callable[["Bucket"], list[tuple[int, str]]]
GREEN, BLUE, ORANGE, GREY, INK = "#009E73", "#0072B2", "#E69F00", "#BBBBBB", "#222222"


@dataclass(frozen=True, slots=True)
class Bucket:
    done: int
    other: int  # cancelled, or not finished yet (failures are in `failed`)
    failed: tuple[tuple[str, int], ...]  # (kind, count)
    p50: float | None
    p95: float | None

    @property
    def jobs(self) -> int:
        return self.done + self.other + sum(n for _, n in self.failed)


@dataclass(frozen=True, slots=True)
class Window:
    title: str
    bucket_hours: int
    buckets: tuple[Bucket, ...]  # oldest first
    p50: float | None
    p95: float | None

    @property
    def jobs(self) -> int:
        return sum(b.jobs for b in self.buckets)

    @property
    def failures(self) -> tuple[tuple[str, int], ...]:
        total: Counter[str] = Counter()
        for bucket in self.buckets:
            total.update(dict(bucket.failed))
        return tuple(sorted(total.items(), key=lambda item: (-item[1], item[0])))


async def load_windows(jobs: JobStore, now: float) -> tuple[Window, Window]:
    day = await _window(jobs, now, "24 h", hours=24, bucket_hours=1)
    week = await _window(jobs, now, "7 d", hours=24 * 7, bucket_hours=6)
    return day, week


async def _window(
    jobs: JobStore, now: float, title: str, *, hours: int, bucket_hours: int
) -> Window:
    size = bucket_hours * HOUR
    timeline = await jobs.timeline(since=now - hours * HOUR, now=now, bucket_seconds=size)
    return build_window(timeline, title, count=hours // bucket_hours, bucket_hours=bucket_hours)


def build_window(timeline: JobTimeline, title: str, *, count: int, bucket_hours: int) -> Window:
    done = [0] * count
    other = [0] * count
    failed: list[Counter[str]] = [Counter() for _ in range(count)]
    times: list[list[float]] = [[] for _ in range(count)]
    for index, state, kind, n in timeline.counts:
        index = min(max(index, 0), count - 1)  # a job created exactly at `now` ends the last
        if state == DONE:
            done[index] += n
        elif state == FAILED:
            failed[index][kind or "unknown"] += n
        else:
            other[index] += n
    for index, seconds in timeline.durations:
        times[min(max(index, 0), count - 1)].append(seconds)
    buckets = []
    for i in range(count):
        values = sorted(times[i])
        buckets.append(
            Bucket(
                done=done[i],
                other=other[i],
                failed=tuple(sorted(failed[i].items())),
                p50=percentile(values, 0.5),
                p95=percentile(values, 0.95),
            )
        )
    every = sorted(seconds for _, seconds in timeline.durations)
    return Window(
        title=title,
        bucket_hours=bucket_hours,
        buckets=tuple(buckets),
        p50=percentile(every, 0.5),
        p95=percentile(every, 0.95),
    )


def render_png(day: Window, week: Window) -> bytes:
    from PIL import Image, ImageDraw, ImageFont  # lazily: see the module's docstring

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    title_font = ImageFont.load_default(size=20)
    kinds = _kind_colours(day, week)
    column = WIDTH // 2
    for number, window in enumerate((day, week)):
        left = number * column
        draw.text((left + 60, 8), window.title, fill=INK, font=title_font)
        for top, label in ((40, "jobs"), (285, "time to result, s"), (530, "failures")):
            draw.text(
                (left + 60, top + 4), f"{label} / {window.bucket_hours} h", fill=INK, font=font
            )
        boxes = [(left + 60, top + 24, left + column - 20, top + 210) for top in (40, 285, 530)]
        _bars(draw, font, boxes[0], window, lambda b: [(b.done, GREEN), (b.jobs - b.done, GREY)])
        _lines(draw, font, boxes[1], window)
        _bars(draw, font, boxes[2], window, lambda b: [(n, kinds[k]) for k, n in b.failed])
    _legend(draw, font, kinds)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _kind_colours(*windows: Window) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for window in windows:
        for kind, _ in window.failures:
            kinds.setdefault(kind, PALETTE[len(kinds) % len(PALETTE)])
    return kinds


def _axes(draw: Any, font: Any, box: Box, top_value: float, window: Window) -> None:
    x0, y0, x1, y1 = box
    draw.line((x0, y1, x1, y1), fill=INK)
    draw.line((x0, y0, x0, y1), fill=INK)
    draw.text((x0 - 6, y0), _short(top_value), fill=INK, font=font, anchor="ra")
    draw.text((x0 - 6, y1), "0", fill=INK, font=font, anchor="rb")
    hours = window.bucket_hours * len(window.buckets)
    draw.text((x0, y1 + 4), f"-{hours} h", fill=INK, font=font)
    draw.text((x1, y1 + 4), "now", fill=INK, font=font, anchor="ra")


def _bars(draw: Any, font: Any, box: Box, window: Window, parts: Parts) -> None:
    x0, y0, x1, y1 = box
    stacks = [[(n, colour) for n, colour in parts(b) if n > 0] for b in window.buckets]
    top = max([sum(n for n, _ in stack) for stack in stacks] + [1])
    _axes(draw, font, box, top, window)
    step = (x1 - x0) / len(stacks)
    for i, stack in enumerate(stacks):
        base = y1
        for n, colour in stack:
            height = (y1 - y0) * n / top
            left = x0 + i * step + 1
            draw.rectangle((left, base - height, left + max(step - 2, 1), base), fill=colour)
            base -= height


def _lines(draw: Any, font: Any, box: Box, window: Window) -> None:
    x0, y0, x1, y1 = box
    values = [v for b in window.buckets for v in (b.p50, b.p95) if v is not None]
    top = max([*values, 1.0])
    _axes(draw, font, box, top, window)
    step = (x1 - x0) / len(window.buckets)
    for name, colour in (("p95", ORANGE), ("p50", BLUE)):  # p50 on top where they meet
        points = [
            (x0 + (i + 0.5) * step, y1 - (y1 - y0) * value / top)
            for i, bucket in enumerate(window.buckets)
            if (value := getattr(bucket, name)) is not None
        ]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    draw.text((x1, y0), "p50", fill=BLUE, font=font, anchor="ra")
    draw.text((x1 - 40, y0), "p95", fill=ORANGE, font=font, anchor="ra")


def _legend(draw: Any, font: Any, kinds: dict[str, str]) -> None:
    x, y = 60, HEIGHT - 24
    for label, colour in [("done", GREEN), ("not done", GREY), *kinds.items()]:
        draw.rectangle((x, y, x + 14, y + 14), fill=colour)
        draw.text((x + 20, y), label, fill=INK, font=font)
        x += 30 + int(draw.textlength(label, font=font))


def _short(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
