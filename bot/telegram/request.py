"""Reading a request for a picture, from /imagine or an inline query alike: the length
bound, the flags and the model, each refusal as the sentence the user reads."""

from __future__ import annotations

from dataclasses import dataclass

from bot.arta.errors import UnknownModelError
from bot.config import Config
from bot.telegram import texts
from bot.telegram.imagine_args import ArgumentError, ImagineArgs, parse_imagine
from bot.telegram.model_menu import ModelMenu, resolve_leading

# Room for the flags around a prompt and a negative prompt of the longest allowed lengths.
_FLAGS_ROOM = 200


@dataclass(frozen=True, slots=True)
class Request:
    args: ImagineArgs
    # Empty when nothing was typed (and there was nothing to fall back on).
    prompt: str
    # The model named with --model (qualified), None for the user's default.
    model: str | None


class Refused(Exception):
    """The request cannot be drawn; `text` says why (HTML, in the user's language)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def max_command_length(config: Config) -> int:
    """The longest /imagine arguments that can be valid."""
    return config.limits.max_prompt_length + config.limits.max_negative_length + _FLAGS_ROOM


def read_request(text: str, config: Config, menu: ModelMenu, *, fallback: str = "") -> Request:
    """Parse `text`; `fallback` is the prompt when only flags were typed (a replied-to
    message). Raises Refused."""
    limits = config.limits
    if len(text) > max_command_length(config):
        # Checked before any parsing, so the cost of a message is bounded by the limits.
        raise Refused(texts.prompt_too_long(limits.max_prompt_length))
    try:
        args = parse_imagine(text)
    except ArgumentError as error:
        raise Refused(texts.bad_flag(error.flag, error.field)) from None
    try:
        model, rest = resolve_leading(menu, args.model) if args.model else (None, "")
    except UnknownModelError as error:
        raise Refused(texts.unknown_model(error.name, error.suggestions)) from None
    typed = " ".join(part for part in (args.prompt, rest) if part)
    prompt = typed or fallback
    if len(prompt) > limits.max_prompt_length:
        raise Refused(texts.prompt_too_long(limits.max_prompt_length))
    if args.negative_prompt and len(args.negative_prompt) > limits.max_negative_length:
        raise Refused(texts.negative_too_long(limits.max_negative_length))
    return Request(args=args, prompt=prompt, model=model)
