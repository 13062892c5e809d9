"""`/imagine` arguments: a free-text prompt with optional flags anywhere in it.

    a fox in the snow --model flux --ar 16:9 -n 2 --seed 7 --neg blurry, text --steps 30 --cfg 7

`--model` and `--neg` take every word up to the next flag (model names and negative
prompts have spaces); the other flags take one word. Phones turn `--` into an em or en
dash, so those are accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.arta.types import (
    ASPECT_RATIOS,
    MAX_CFG,
    MAX_IMAGES,
    MAX_SEED,
    MAX_STEPS,
    MIN_CFG,
    MIN_IMAGES,
    MIN_SEED,
    MIN_STEPS,
)


@dataclass(frozen=True, slots=True)
class ImagineArgs:
    prompt: str
    model: str | None = None
    aspect_ratio: str | None = None
    images: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    cfg: float | None = None


class ArgumentError(ValueError):
    """A flag with a bad or missing value: `flag` as the user wrote it, `field` its meaning."""

    def __init__(self, flag: str, field: str) -> None:
        super().__init__(f"bad value for {flag}")
        self.flag = flag
        self.field = field


_FLAGS: dict[str, str] = {
    "--model": "model",
    "-m": "model",
    "--ar": "aspect_ratio",
    "--aspect": "aspect_ratio",
    "-n": "images",
    "--n": "images",
    "--images": "images",
    "--seed": "seed",
    "--neg": "negative_prompt",
    "--no": "negative_prompt",
    "--steps": "steps",
    "--cfg": "cfg",
}
_MULTI_WORD = {"model", "negative_prompt"}
_LOOKS_LIKE_FLAG = re.compile(r"--[A-Za-z][A-Za-z0-9_-]*")
_DASHES = re.compile(r"^[\u2014\u2013]")  # em dash, en dash


@dataclass(slots=True)
class _FlagValue:
    field: str
    flag: str
    words: list[str]

    def takes(self) -> bool:
        return not self.words or self.field in _MULTI_WORD


def parse_imagine(text: str) -> ImagineArgs:
    """Split `text` (the command's arguments) into prompt and flags; raise ArgumentError."""
    prompt: list[str] = []
    flags: dict[str, _FlagValue] = {}
    current: _FlagValue | None = None
    for word in text.split():
        flag, _, inline = _DASHES.sub("--", word).partition("=")
        field = _FLAGS.get(flag.lower())
        if field is not None:
            current = flags[field] = _FlagValue(field, flag, [inline] if inline else [])
        elif _LOOKS_LIKE_FLAG.fullmatch(flag):
            # A typo like --modle or an option we lack (--style) would otherwise be drawn.
            raise ArgumentError(flag, "unknown")
        elif current is not None and current.takes():
            current.words.append(word)
        else:
            current = None
            prompt.append(word)
    values = {field: _convert(value) for field, value in flags.items()}
    return ImagineArgs(prompt=" ".join(prompt), **values)


def _convert(value: _FlagValue) -> object:
    raw = " ".join(value.words).strip().strip("\"'\u201c\u201d\u00ab\u00bb")
    if not raw:
        raise ArgumentError(value.flag, value.field)
    try:
        return _CONVERTERS[value.field](raw)
    except ValueError:
        raise ArgumentError(value.flag, value.field) from None


def _ratio(raw: str) -> str:
    ratio = raw.replace("x", ":").replace("\u00d7", ":").replace("/", ":")
    if ratio not in ASPECT_RATIOS:
        raise ValueError(raw)
    return ratio


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
            raise ValueError(raw)
        return int(raw)

    return convert


def _cfg(raw: str) -> float:
    value = float(raw.replace(",", "."))
    if not MIN_CFG <= value <= MAX_CFG:
        raise ValueError(raw)
    return value


_CONVERTERS: dict[str, Callable[[str], object]] = {
    "model": str,
    "aspect_ratio": _ratio,
    "images": _int_in(MIN_IMAGES, MAX_IMAGES),
    "seed": _int_in(MIN_SEED, MAX_SEED),
    "negative_prompt": str,
    "steps": _int_in(MIN_STEPS, MAX_STEPS),
    "cfg": _cfg,
}
