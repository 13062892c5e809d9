"""Every user-facing sentence, in one place, through gettext.

Functions take plain values and return HTML-safe text; anything that came from a user is
escaped here. Msgids are the English text; catalogues live in bot/locales.
"""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _

from bot.arta.types import ASPECT_RATIOS, MAX_CFG, MAX_IMAGES, MAX_STEPS, MIN_CFG
from bot.jobs.observer import FailureKind, Progress, Stage

# Telegram counts caption length after entity parsing, in UTF-16 code units.
CAPTION_LIMIT = 1024


def help_text(bot_username: str) -> str:
    return _(
        "🎨 <b>I draw pictures from your words.</b>\n\n"
        "<b>/imagine</b> <i>prompt</i> — pick a model, get an album\n"
        "Options go anywhere after the prompt:\n"
        "<code>--model NAME</code> skip the picker (see /models)\n"
        "<code>--ar 16:9</code> aspect ratio: {ratios}\n"
        "<code>-n 4</code> number of pictures, 1 to {max_images}\n"
        "<code>--seed 42</code> repeat a picture exactly\n"
        "<code>--neg TEXT</code> what to keep out of the picture\n"
        "<code>--steps 30</code> and <code>--cfg 7</code> for the curious\n\n"
        "Examples:\n"
        "<code>/imagine a fox in the snow</code>\n"
        "<code>/imagine a lighthouse at dusk --model flux --ar 16:9 -n 2</code>\n\n"
        "Reply to any message with /imagine to draw its text.\n"
        "In groups write <code>/imagine@{bot}</code>.\n\n"
        "/models — choose your default model\n"
        "/settings — ratio, count, negative prompt, files, language\n"
        "/history — your last pictures\n"
        "/help — this message"
    ).format(ratios=", ".join(ASPECT_RATIOS), max_images=MAX_IMAGES, bot=escape(bot_username))


def usage() -> str:
    return _(
        "Tell me what to draw: <code>/imagine a fox in the snow</code>\n"
        "Or reply to a message with /imagine. More in /help."
    )


def bad_flag(flag: str, field: str) -> str:
    allowed = {
        "model": _("a model name, e.g. flux (see /models)"),
        "aspect_ratio": _("one of {ratios}").format(ratios=", ".join(ASPECT_RATIOS)),
        "images": _("a whole number from 1 to {high}").format(high=MAX_IMAGES),
        "seed": _("a whole number from 0 to 4294967295"),
        "negative_prompt": _("the things to avoid, e.g. --neg blurry, text"),
        "steps": _("a whole number from 1 to {high}").format(high=MAX_STEPS),
        "cfg": _("a number from {low:g} to {high:g}").format(low=MIN_CFG, high=MAX_CFG),
    }.get(field)
    if allowed is None:
        return _(
            "⚠️ I don't know the option <code>{flag}</code>. The options are "
            "<code>--model</code>, <code>--ar</code>, <code>-n</code>, <code>--seed</code>, "
            "<code>--neg</code>, <code>--steps</code> and <code>--cfg</code> (see /help)."
        ).format(flag=escape(flag))
    return _("⚠️ <code>{flag}</code> needs {allowed}.").format(flag=escape(flag), allowed=allowed)


def unknown_model(name: str, suggestions: tuple[str, ...]) -> str:
    text = _("⚠️ I don't know the model <b>{name}</b>.").format(name=escape(name))
    if suggestions:
        closest = ", ".join(f"<code>{escape(s)}</code>" for s in suggestions)
        text += " " + _("Did you mean {closest}?").format(closest=closest)
    return text + "\n" + _("/models lists them all.")


def prompt_too_long(limit: int) -> str:
    return _("⚠️ That prompt is too long: keep it under {limit} characters.").format(limit=limit)


def negative_too_long(limit: int) -> str:
    return _("⚠️ The negative prompt is too long: keep it under {limit} characters.").format(
        limit=limit
    )


def rate_limited(seconds: float) -> str:
    return _("⏳ You are drawing a lot! Try again in {seconds} s.").format(
        seconds=max(1, round(seconds))
    )


def slow_down() -> str:
    return _("Easy there — one at a time, please.")


def not_allowed() -> str:
    return _("Sorry, this bot is private.")


def pick_model(prompt: str, default_model: str) -> str:
    return _("🎨 <b>{prompt}</b>\n\nPick a model, or go with your default ({model}).").format(
        prompt=escape(_shorten(prompt, 300)), model=escape(default_model)
    )


def pick_default_model(current: str) -> str:
    return _("Your default model is <b>{model}</b>. Pick another:").format(model=escape(current))


def default_model_set(model: str) -> str:
    return _("✅ Default model: <b>{model}</b>").format(model=escape(model))


def use_default_button(model: str) -> str:
    return _("⭐ Go with {model}").format(model=model)


def previous_page() -> str:
    return _("‹ Back")


def next_page() -> str:
    return _("Next ›")


def status(progress: Progress, model: str) -> str:
    if progress.stage is Stage.WAITING:
        return _("⏳ Waiting in line: #{position}").format(position=progress.position or 1)
    if progress.stage is Stage.QUEUED:
        return _("⏳ Queued at {model}…").format(model=escape(model))
    return _("🎨 Drawing with {model}… {seconds} s").format(
        model=escape(model), seconds=int(progress.elapsed)
    )


def accepted(model: str) -> str:
    return _("⏳ Starting {model}…").format(model=escape(model))


def cancel_button() -> str:
    return _("✖ Cancel")


def cancelled() -> str:
    return _("✖ Cancelled.")


def too_late_to_cancel() -> str:
    return _("Too late to cancel: the pictures are on their way.")


def caption(
    prompt: str,
    model: str,
    aspect_ratio: str,
    seed: int | None,
    *,
    drawn_by: str | None = None,
    instead_of: str | None = None,
    drawn_ratio: str | None = None,
) -> str:
    """Prompt and settings, escaped, with the prompt cut so the whole fits 1024 characters.

    `drawn_by` and `instead_of` name the services when failover moved the job;
    `drawn_ratio` is the ratio drawn when the service had no size for `aspect_ratio`."""
    meta = f"{model} · {drawn_ratio or aspect_ratio}"
    if seed is not None:
        meta += " · " + _("seed {seed}").format(seed=seed)
    if drawn_by is not None and instead_of is not None:
        meta += "\n" + _("Drawn by {service}: {other} is not available right now").format(
            service=drawn_by, other=instead_of
        )
    if drawn_ratio is not None:
        meta += "\n" + _("Drawn at {drawn}, the nearest to {asked} this service draws").format(
            drawn=drawn_ratio, asked=aspect_ratio
        )
    room = CAPTION_LIMIT - _utf16_len(meta) - 2  # two newlines
    return f"{escape(_shorten_utf16(prompt, room))}\n\n<i>{escape(meta)}</i>"


def ready(seconds: float, blurred: int) -> str:
    text = _("✅ Ready in {seconds} s.").format(seconds=max(1, round(seconds)))
    if blurred:
        text += "\n" + _(
            "🙈 The service's safety filter blurred {count} of the pictures: tap to reveal."
        ).format(count=blurred)
    return text


def again_button() -> str:
    return _("🔁 Again")


def other_model_button() -> str:
    return _("🎨 Other model")


def same_seed_button() -> str:
    return _("🌱 Same seed")


def retry_button() -> str:
    return _("🔁 Retry")


def repeat_button(number: int) -> str:
    return _("🔁 Repeat #{number}").format(number=number)


def failed(kind: FailureKind, detail: str | None) -> str:
    messages = {
        FailureKind.INVALID: _("The service did not accept these settings"),
        FailureKind.CONTENT: _("The service's safety rules refused this prompt"),
        FailureKind.AUTH: _("The service refused to let me in right now"),
        FailureKind.REFUSED: _("The drawing service refused this bot"),
        FailureKind.UNAVAILABLE: _("The picture service is not answering right now"),
        FailureKind.FAILED: _("The service could not draw this one"),
        FailureKind.TIMEOUT: _("The service took too long"),
        FailureKind.IMAGE: _("The finished pictures could not be fetched"),
        FailureKind.DELIVERY: _("Telegram would not take the pictures"),
        FailureKind.BLOCKED: _("I can't write to this chat"),
        FailureKind.INTERNAL: _("Something broke on my side"),
    }
    text = "⚠️ " + messages[kind]
    if kind is FailureKind.INVALID and detail:
        text += f": {escape(_shorten(detail, 300))}"
    text += "."
    if kind is FailureKind.REFUSED:
        # Retry stays offered, but nothing may promise it works: it will not until the
        # owner changes the bot's settings or the service changes its mind.
        text += " " + _("This will not pass by itself: the bot's owner has to fix it.")
    elif kind.retryable:
        text += " " + _("Press Retry to try again.")
    return text


def button_expired() -> str:
    return _("This button has expired.")


def not_your_button() -> str:
    return _("Only the person who asked for this can press its buttons.")


def history(lines: list[str]) -> str:
    if not lines:
        return _("You have no pictures yet. Try /imagine a fox in the snow")
    return _("🕘 <b>Your last pictures</b>") + "\n\n" + "\n".join(lines)


def history_line(number: int, prompt: str, model: str, state: str) -> str:
    return f"{number}. {escape(_shorten(prompt, 80))} — <i>{escape(model)}</i> {state}"


def something_went_wrong() -> str:
    return _("⚠️ Something went wrong on my side. Please try again.")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _shorten_utf16(text: str, limit: int) -> str:
    if _utf16_len(text) <= limit:
        return text
    cut = text
    while _utf16_len(cut) > limit - 1:
        # Drop a few characters at a time; surrogate pairs never get split this way.
        cut = cut[: max(0, len(cut) - max(1, _utf16_len(cut) - (limit - 1)))]
    return cut.rstrip() + "…"


def settings_menu(
    *,
    model: str,
    aspect_ratio: str,
    images: int,
    negative_prompt: str,
    always_pick: bool,
    as_files: bool,
    language: str | None,
) -> str:
    return _(
        "⚙️ <b>Your settings</b>\n\n"
        "Model: <b>{model}</b>\n"
        "Aspect ratio: <b>{ratio}</b>\n"
        "Pictures per request: <b>{images}</b>\n"
        "Negative prompt: <i>{negative}</i>\n"
        "Model picker every time: <b>{pick}</b>\n"
        "Send as files (full quality): <b>{files}</b>\n"
        "Language: <b>{language}</b>\n\n"
        "Flags on /imagine override these for one request.\n"
        "Set the negative prompt with <code>/settings neg TEXT</code> "
        "(<code>/settings neg off</code> for none)."
    ).format(
        model=escape(model),
        ratio=aspect_ratio,
        images=images,
        negative=escape(_shorten(negative_prompt, 200)) if negative_prompt else _("none"),
        pick=on_off(always_pick),
        files=on_off(as_files),
        language=language_name(language),
    )


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


def language_name(code: str | None) -> str:
    return {"en": "English", "ru": "Русский"}.get(code or "", _("from Telegram"))


def settings_button_model() -> str:
    return _("🎨 Model")


def settings_button_ratio() -> str:
    return _("📐 Ratio")


def settings_button_images() -> str:
    return _("🖼 Count")


def settings_button_picker() -> str:
    return _("🗂 Picker on/off")


def settings_button_files() -> str:
    return _("📎 Files on/off")


def settings_button_language() -> str:
    return _("🌐 Language")


def settings_button_reset_negative() -> str:
    return _("♻️ Default negative prompt")


def settings_button_back() -> str:
    return _("‹ Back")


def settings_button_close() -> str:
    return _("✔ Done")


def settings_saved() -> str:
    return _("Saved.")


def settings_closed() -> str:
    return _("⚙️ Settings saved.")


def choose_ratio() -> str:
    return _("📐 Pick the aspect ratio:")


def choose_images() -> str:
    return _("🖼 How many pictures per request?")


def choose_language() -> str:
    return _("🌐 Pick the language:")


def stats(
    *,
    jobs: int,
    done: int,
    failed: int,
    cancelled: int,
    success_rate: float | None,
    median: float | None,
    p95: float | None,
    queue: int,
    in_flight: int,
    errors: str,
) -> str:
    def seconds(value: float | None) -> str:
        return "—" if value is None else _("{seconds} s").format(seconds=f"{value:.1f}")

    return _(
        "📊 <b>Today</b>\n"
        "Jobs: {jobs} (done {done}, failed {failed}, cancelled {cancelled})\n"
        "Success rate: {rate}\n"
        "Time to result: median {median}, 95th percentile {p95}\n"
        "Waiting in line: {queue}; upstream now: {in_flight}\n"
        "Upstream errors: {errors}"
    ).format(
        jobs=jobs,
        done=done,
        failed=failed,
        cancelled=cancelled,
        rate="—" if success_rate is None else f"{success_rate:.0%}",
        median=seconds(median),
        p95=seconds(p95),
        queue=queue,
        in_flight=in_flight,
        errors=escape(errors) or _("none"),
    )


def stats_provider(
    *, service: str, jobs: int, failed: int, median: float | None, circuit: str
) -> str:
    """One line of /stats per service; `circuit` is closed, open or half-open."""
    state = {
        "closed": _("working"),
        "open": _("switched off after failures"),
        "half-open": _("being probed"),
    }.get(circuit, circuit)
    time = "—" if median is None else _("{seconds} s").format(seconds=f"{median:.1f}")
    return _("{service}: {jobs} jobs, {failed} failed, median {median}; {state}").format(
        service=escape(service), jobs=jobs, failed=failed, median=time, state=state
    )


def stats_chart_caption(
    *,
    day_jobs: int,
    day_p50: float | None,
    day_p95: float | None,
    week_jobs: int,
    week_p50: float | None,
    week_p95: float | None,
    week_failures: str,
) -> str:
    def seconds(value: float | None) -> str:
        return "—" if value is None else _("{seconds} s").format(seconds=f"{value:.1f}")

    return _(
        "📈 <b>Last 24 hours</b>: {day_jobs} jobs, time to result p50 {day_p50}, "
        "p95 {day_p95}\n"
        "<b>Last 7 days</b>: {week_jobs} jobs, p50 {week_p50}, p95 {week_p95}\n"
        "Failures in 7 days: {failures}"
    ).format(
        day_jobs=day_jobs,
        day_p50=seconds(day_p50),
        day_p95=seconds(day_p95),
        week_jobs=week_jobs,
        week_p50=seconds(week_p50),
        week_p95=seconds(week_p95),
        failures=escape(week_failures) or _("none"),
    )


def admins_only() -> str:
    return _("This command is for the bot's admins.")


# Inline mode (@bot prompt in any chat). Titles and descriptions of inline results are
# plain text; the messages they post are HTML like every other message.


def inline_howto_title() -> str:
    return _("🎨 Type what to draw")


def inline_howto_description() -> str:
    return _("e.g. a fox in the snow --ar 16:9 --model flux")


def inline_howto(bot_username: str) -> str:
    return _(
        "🎨 I draw pictures right here: type <code>@{bot} a fox in the snow</code> in any "
        "chat and pick a model. Options work as in /imagine "
        "(<code>--model</code>, <code>--ar</code>, <code>--seed</code>, <code>--neg</code>); "
        "an inline message holds one picture."
    ).format(bot=escape(bot_username))


def inline_draw_with(model: str) -> str:
    return _("🎨 Draw with {model}").format(model=model)


def inline_drawing(prompt: str, model: str) -> str:
    """The placeholder an inline result posts, until the job's progress replaces it."""
    return _("🎨 Drawing: {prompt} · {model}").format(
        prompt=escape(_shorten(prompt, 300)), model=escape(model)
    )


def inline_status(prompt: str, status_line: str) -> str:
    """An inline job's status: the prompt stays on top, for everyone in that chat."""
    return f"<b>{escape(_shorten(prompt, 300))}</b>\n{status_line}"


def inline_refused_title() -> str:
    return _("⚠️ I can't draw this")


def inline_needs_a_chat(bot_username: str) -> str:
    return _(
        "⚠️ I could not put the picture here: Telegram wants it uploaded somewhere first. "
        "Open a chat with @{bot}, press Start, then press Retry."
    ).format(bot=escape(bot_username))


def share_button() -> str:
    return _("🔗 Share this prompt")


def add_to_group_button() -> str:
    return _("➕ Add to a group")


def try_inline_button() -> str:
    return _("✨ Try inline")


def bad_start_link() -> str:
    return _("⚠️ That link is broken or too old. Here is how I work:")
