"""Russian speakers get the whole bot in Russian, and no text is left out of a catalogue."""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import re
import shutil
import sys
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from types import ModuleType, NoneType, UnionType
from typing import Any

import pytest
from aiogram.types import User
from babel.messages.catalog import Message

from bot.jobs.observer import Progress, Stage
from bot.storage.records import UserSettings
from bot.telegram import texts
from bot.telegram.commands import command_menu, description, short_description
from bot.telegram.i18n import locale_for, make_i18n
from tests.bot_steps import said
from tests.harness import running_bot

ROOT = Path(__file__).resolve().parent.parent
CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def _load_tool() -> ModuleType:
    # scripts/ is not a package; load the catalogue tool the way `python scripts/i18n.py` does.
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
SOURCE_IDS = sorted((m.id for m in tool.extracted()), key=str)
RU_MESSAGES = [m for m in tool.read_catalog("ru") if m.id]


def _msgid(message: Message) -> str:
    text = message.id[0] if isinstance(message.id, tuple) else message.id
    return text[:40]


# ------------------------------------------------------------------ catalogues vs source


@pytest.mark.parametrize("locale", tool.LOCALE_NAMES)
def test_every_text_in_the_source_is_in_each_catalogue_and_nothing_else(locale: str) -> None:
    catalog = tool.read_catalog(locale)
    present = {m.id for m in catalog if m.id}
    missing = [msgid for msgid in SOURCE_IDS if msgid not in present]
    extra = sorted(present - set(SOURCE_IDS), key=str)
    assert not missing, f"not in {locale}; run scripts/i18n.py extract update: {missing}"
    assert not extra, f"no longer in the source, in {locale}; run update: {extra}"
    assert not catalog.obsolete, f"obsolete entries in {locale}: {list(catalog.obsolete)}"


def test_every_russian_entry_is_translated_and_checked() -> None:
    untranslated = [m.id for m in RU_MESSAGES if not tool._is_translated(m)]
    fuzzy = [m.id for m in RU_MESSAGES if m.fuzzy]
    assert not untranslated, f"translate these in ru/LC_MESSAGES/messages.po: {untranslated}"
    assert not fuzzy, f"fuzzy guesses to review in ru: {fuzzy}"


@pytest.mark.parametrize("locale", tool.LOCALE_NAMES)
def test_compiled_catalogue_says_what_its_po_says(locale: str) -> None:
    assert tool.mo_differences(locale) == "", "run: python scripts/i18n.py compile"


def test_template_lists_exactly_the_source_texts() -> None:
    with tool.TEMPLATE.open("rb") as fp:
        stored = sorted((m.id for m in tool.read_po(fp) if m.id), key=str)
    assert stored == SOURCE_IDS, "run: python scripts/i18n.py extract update"


def test_no_gettext_call_hides_its_text_from_extraction() -> None:
    assert list(tool.misused_calls()) == []


def test_check_fails_when_a_text_is_in_one_language_and_not_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(tool.LOCALES, locales)
    monkeypatch.setattr(tool, "LOCALES", locales)
    monkeypatch.setattr(tool, "TEMPLATE", locales / "messages.pot")
    assert tool.problems() == []

    victim = str(SOURCE_IDS[0])
    _rewrite(tool, "en", lambda catalog: catalog.delete(victim))
    _rewrite(tool, "ru", lambda catalog: setattr(catalog[victim], "string", ""))

    found = "\n".join(tool.problems())
    assert "en/LC_MESSAGES/messages.po: missing msgid" in found
    assert "ru/LC_MESSAGES/messages.po: untranslated" in found
    assert "ru/LC_MESSAGES/messages.mo: stale" in found


def _rewrite(module: ModuleType, locale: str, change: Callable[[Any], object]) -> None:
    catalog = module.read_catalog(locale)
    change(catalog)
    with module.po_path(locale).open("wb") as fp:
        module.write_po(fp, catalog)


# ------------------------------------------------------------------ shape of translations


@pytest.mark.parametrize("message", RU_MESSAGES, ids=_msgid)
def test_russian_translation_fills_the_same_placeholders(message: Message) -> None:
    assert tool.placeholders(message.string) == tool.placeholders(message.id)


@pytest.mark.parametrize("message", RU_MESSAGES, ids=_msgid)
def test_russian_translation_keeps_html_commands_code_and_emoji(message: Message) -> None:
    for measure in (tool.html_structure, tool.code_contents, tool.commands, tool.emoji):
        assert measure(message.string) == measure(message.id), measure.__name__


# ------------------------------------------------------------------ who gets which language


@pytest.mark.parametrize(
    ("language_code", "expected"),
    [
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("uk", "ru"),
        ("be", "ru"),
        ("en", "en"),
        ("en-GB", "en"),
        ("de", "en"),
        (None, "en"),
    ],
)
def test_language_follows_telegram_language_code(language_code: str | None, expected: str) -> None:
    user = User(id=1, is_bot=False, first_name="A", language_code=language_code)
    assert locale_for(make_i18n(), user, None) == expected


@pytest.mark.parametrize(
    ("language_code", "setting", "expected"),
    [("ru", "en", "en"), ("de", "ru", "ru"), ("uk", "en", "en"), ("ru", None, "ru")],
)
def test_language_chosen_in_settings_wins(
    language_code: str, setting: str | None, expected: str
) -> None:
    user = User(id=1, is_bot=False, first_name="A", language_code=language_code)
    settings = UserSettings(bot_id=1, user_id=1, language=setting)
    assert locale_for(make_i18n(), user, settings) == expected


def test_no_user_at_all_gets_english() -> None:
    assert locale_for(make_i18n(), None, None) == "en"


# ------------------------------------------------------------------ every text, rendered

# Texts built only from what the user typed and settings values: nothing to translate.
UNTRANSLATED = {"caption", "history_line", "inline_status"}
# Arguments that need a real value, or that would otherwise render a text with no words of
# its own ("English"/"Русский" are names, not translations).
NAMED_SAMPLES: dict[str, list[Any]] = {
    "field": ["model", "aspect_ratio", "images", "seed", "negative_prompt", "steps", "cfg"],
    "code": [None],
    "language": [None, "en"],
    "aspect_ratio": ["16:9"],
}
TYPE_SAMPLES: dict[type, list[Any]] = {
    str: ["flux"],
    int: [3],
    float: [12.5],
    bool: [True, False],
    tuple: [("flux", "sdxl"), ()],
    list: [[], ["1. a fox — <i>flux</i> ✅"]],
    Progress: [Progress(stage, position=2, elapsed=7.0) for stage in Stage],
}


def _text_functions() -> list[tuple[str, Callable[..., str]]]:
    return [
        (name, function)
        for name, function in inspect.getmembers(texts, inspect.isfunction)
        if function.__module__ == texts.__name__ and not name.startswith("_")
    ]


def _samples(name: str, annotation: Any) -> list[Any]:
    if name in NAMED_SAMPLES:
        return NAMED_SAMPLES[name]
    if isinstance(annotation, UnionType) or typing.get_origin(annotation) is typing.Union:
        options = [a for a in typing.get_args(annotation) if a is not NoneType]
        return [*_samples(name, options[0]), None]
    base = typing.get_origin(annotation) or annotation
    if isinstance(base, type) and issubclass(base, Enum):
        return list(base)
    if base in TYPE_SAMPLES:
        return TYPE_SAMPLES[base]
    raise AssertionError(f"add a sample for {name}: {annotation} in tests/test_i18n.py")


def _calls() -> list[Any]:
    cases = []
    for name, function in _text_functions():
        if name in UNTRANSLATED:
            continue
        hints = typing.get_type_hints(function)
        parameters = list(inspect.signature(function).parameters)
        choices = [_samples(p, hints[p]) for p in parameters]
        for number, values in enumerate(itertools.product(*choices)):
            cases.append(
                pytest.param(
                    function, dict(zip(parameters, values, strict=True)), id=f"{name}-{number}"
                )
            )
    return cases


@pytest.mark.parametrize(("function", "kwargs"), _calls())
def test_every_text_renders_in_russian(function: Callable[..., str], kwargs: dict) -> None:
    i18n = make_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        russian = function(**kwargs)
    with i18n.context(), i18n.use_locale("en"):
        english = function(**kwargs)
    assert CYRILLIC.search(russian), russian
    assert not CYRILLIC.search(english), english


def test_only_texts_without_words_are_left_untranslated() -> None:
    names = {name for name, _function in _text_functions()}
    assert names >= UNTRANSLATED, "a function in UNTRANSLATED is gone from texts.py"


def test_command_menu_and_descriptions_render_in_russian() -> None:
    i18n = make_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        menu = command_menu()
        texts_ru = [description(), short_description(), *(c.description for c in menu)]
    for text in texts_ru:
        assert CYRILLIC.search(text), text


# ------------------------------------------------------------------ over the real HTTP path


async def test_russian_user_gets_help_in_russian_and_a_russian_menu(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user(2002, first_name="Маша", language_code="ru")
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/help")
        answer = await stack.wait_text(
            chat, said(texts.help_text, stack.bot.username, locale="ru")
        )
        text = answer.text or ""
        assert CYRILLIC.search(text), text
        assert said(texts.help_text, stack.bot.username) != text  # not the English one
        for flag in ("--model", "--ar", "--seed", "--neg"):
            assert flag in text, flag
        assert f"/imagine@{stack.bot.username}" in text

        english = {c["command"]: c["description"] for c in stack.bot.commands()}
        russian = {c["command"]: c["description"] for c in stack.bot.commands("ru")}
        assert set(russian) == set(english)
        assert all(CYRILLIC.search(d) for d in russian.values()), russian
        assert not any(CYRILLIC.search(d) for d in english.values()), english
        assert CYRILLIC.search(stack.bot.descriptions.get("ru", ""))
        assert CYRILLIC.search(stack.bot.short_descriptions.get("ru", ""))
