"""Keep the gettext catalogues in bot/locales in step with the source.

    python scripts/i18n.py extract    # bot/**/*.py  _() calls -> bot/locales/messages.pot
    python scripts/i18n.py update     # messages.pot -> en and ru messages.po, translations kept
    python scripts/i18n.py compile    # every messages.po -> messages.mo (commit both)
    python scripts/i18n.py check      # exit 1 if anything below is out of step

Workflow after adding or changing a string in bot/ (use the venv's python):

    python scripts/i18n.py extract update
    # translate the new or fuzzy entries in bot/locales/ru/LC_MESSAGES/messages.po
    # (remove the "#, fuzzy" line once a guessed translation is right)
    python scripts/i18n.py compile check

Commands run in the order given and every one is safe to re-run: output is sorted by msgid,
locations carry no line numbers, and a file whose only change would be a date header is left
alone, so re-running on unchanged source changes nothing. `update` drops entries whose msgid
left the source (git keeps their history); a reworded msgid comes back as a fuzzy guess.

Msgids are the English text, so the en catalogue may keep empty msgstr; it must still list
every msgid. Write `# Translators: ...` on the line above a `_()` call to leave a note in the
catalogue. Call `_()` with a string literal only: `_(f"...")` or `_(name)` cannot be
extracted, and `check` reports it; format after translating, `_("Hi {name}").format(...)`.

`check` fails when: a `_()` call has no literal msgid; messages.pot differs from the source;
a msgid is missing from a catalogue or a catalogue holds one the source no longer has
(obsolete); a ru entry is untranslated or fuzzy; a translation's {placeholders}, HTML tags,
<code> contents, /commands or emoji differ from its msgid's; a messages.mo is missing or
says something other than its messages.po (compared by content, not by file times).
"""

from __future__ import annotations

import argparse
import ast
import io
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_file
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bot"
LOCALES = SOURCE / "locales"
DOMAIN = "messages"
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
LOCALE_NAMES = ("en", "ru")
# Catalogues that must translate every msgid; en may leave msgstr empty (msgid is English).
TRANSLATED = ("ru",)
PROJECT = "arta-image-bot"
HEADER = "# Messages of arta-image-bot; msgids are the English text. See scripts/i18n.py.\n#"
# aiogram's gettext is `_(singular, plural=None, n=1, locale=None)`; the lazy one is `__`.
# Babel counts keyword arguments as positional ones, hence a spec per number of arguments.
_SINGULAR_OR_PLURAL = {1: (1,), 2: (1,), 3: (1, 2), 4: (1, 2)}
KEYWORDS = dict.fromkeys(("_", "__", "gettext", "lazy_gettext"), _SINGULAR_OR_PLURAL)
COMMENT_TAGS = ("Translators:",)
# Header lines that change on every run without the messages changing.
_VOLATILE_HEADERS = (b'"POT-Creation-Date:', b'"PO-Revision-Date:', b'"Generated-By:')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("commands", nargs="+", choices=("extract", "update", "compile", "check"))
    args = parser.parse_args(argv)
    for command in args.commands:
        if command == "extract":
            _report("wrote" if extract() else "unchanged", TEMPLATE)
        elif command == "update":
            for locale in LOCALE_NAMES:
                _report("wrote" if update(locale) else "unchanged", po_path(locale))
        elif command == "compile":
            for locale in LOCALE_NAMES:
                _report("wrote" if compile_mo(locale) else "unchanged", mo_path(locale))
        else:
            found = problems()
            for problem in found:
                sys.stderr.write(f"{problem}\n")
            if found:
                sys.stderr.write(f"{len(found)} problem(s); see scripts/i18n.py\n")
                return 1
            sys.stdout.write("catalogues are complete and compiled\n")
    return 0


# ------------------------------------------------------------------------------ commands


def extract() -> bool:
    """Write messages.pot from the source; False when it already said the same."""
    template = Catalog(project=PROJECT, header_comment=HEADER, fuzzy=False)
    for message in extracted():
        template[message.id] = message
    return _write_po(TEMPLATE, template)


def update(locale: str) -> bool:
    """Merge messages.pot into the locale's messages.po, keeping what is translated."""
    with TEMPLATE.open("rb") as fp:
        template = read_po(fp)
    path = po_path(locale)
    if path.exists():
        catalog = read_catalog(locale)
    else:
        catalog = Catalog(
            locale=locale, domain=DOMAIN, project=PROJECT, header_comment=HEADER, fuzzy=False
        )
    catalog.update(template)
    # Obsolete entries are not written back: git keeps the history, and the check stays simple.
    catalog.obsolete.clear()
    return _write_po(path, catalog)


def compile_mo(locale: str) -> bool:
    """Write the locale's messages.mo (fuzzy entries left out, as gettext expects)."""
    path = mo_path(locale)
    if path.exists() and not mo_differences(locale):
        return False
    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(locale), use_fuzzy=False)
    path.write_bytes(buffer.getvalue())
    return True


def problems() -> list[str]:
    """Everything `check` would complain about, one line each; empty when all is well."""
    found = list(misused_calls())
    source = {message.id: message for message in extracted()}
    if not TEMPLATE.exists():
        found.append(f"{_rel(TEMPLATE)}: missing; run: extract")
    else:
        with TEMPLATE.open("rb") as fp:
            stored = {m.id for m in read_po(fp) if m.id}
        if stored != set(source):
            found.append(f"{_rel(TEMPLATE)}: differs from the source; run: extract update")
    for locale in LOCALE_NAMES:
        found.extend(catalogue_problems(locale, source))
    return found


# ------------------------------------------------------------------------------ checks


def catalogue_problems(locale: str, source: dict[object, Message]) -> Iterator[str]:
    path = po_path(locale)
    if not path.exists():
        yield f"{_rel(path)}: missing; run: update"
        return
    catalog = read_catalog(locale)
    where = _rel(path)
    present = {message.id: message for message in catalog if message.id}
    for msgid in sorted(set(source) - set(present), key=str):
        yield f"{where}: missing msgid {_short(msgid)}; run: update"
    for msgid in sorted(set(present) - set(source), key=str):
        yield f"{where}: msgid no longer in the source {_short(msgid)}; run: update"
    for msgid in catalog.obsolete:
        yield f"{where}: obsolete entry {_short(msgid)}; run: update"
    for msgid, message in sorted(present.items(), key=lambda item: str(item[0])):
        if msgid not in source:
            continue
        if locale in TRANSLATED:
            if not _is_translated(message):
                yield f"{where}: untranslated {_short(msgid)}"
                continue
            if message.fuzzy:
                yield f"{where}: fuzzy (unchecked) translation of {_short(msgid)}"
        for problem in translation_problems(message):
            yield f"{where}: {problem} in the translation of {_short(msgid)}"
    differences = mo_differences(locale)
    if differences:
        yield f"{_rel(mo_path(locale))}: {differences}; run: compile"


def translation_problems(message: Message) -> Iterator[str]:
    """How each non-empty translation differs in shape from its msgid."""
    sources = message.id if isinstance(message.id, tuple) else (message.id,)
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    original = sources[-1]  # the plural msgid when there is one: it has every placeholder
    for text in strings:
        if not text:
            continue
        for name, measure in _SHAPES:
            try:
                want, got = measure(original), measure(text)
            except ValueError as error:
                yield f"{name}: {error}"
                continue
            if want != got:
                yield f"{name} {_show(got)} instead of {_show(want)}"


def placeholders(text: str) -> set[str]:
    """The `{name:spec}` fields a str.format call fills; ValueError on stray braces."""
    return {
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }


def html_structure(text: str) -> Counter[str]:
    """Tags used, counted; ValueError unless every tag closes in the order it opened."""
    parser = _TagParser()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise ValueError(f"unclosed <{parser.stack[-1]}>")
    return parser.tags


def code_contents(text: str) -> list[str]:
    parser = _TagParser()
    parser.feed(text)
    parser.close()
    return sorted(parser.code)


def commands(text: str) -> list[str]:
    words = (word.strip(".,:;!?()«»\"'") for word in text.split())
    return sorted(word for word in words if word.startswith("/") and word[1:].isalpha())


def emoji(text: str) -> Counter[str]:
    # Symbols from U+2300 on: emoji and dingbats, but not letterlike signs such as "№".
    return Counter(c for c in text if unicodedata.category(c) == "So" and ord(c) >= 0x2300)


_SHAPES = (
    ("placeholders", placeholders),
    ("HTML tags", html_structure),
    ("<code> contents", code_contents),
    ("commands", commands),
    ("emoji", emoji),
)


class _TagParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: Counter[str] = Counter()
        self.code: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.tags[tag] += 1
        if tag == "code":
            self.code.append("")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise ValueError(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "code" in self.stack:
            self.code[-1] += data


def misused_calls() -> Iterator[str]:
    """`_()` calls whose msgid is not a plain string literal: extraction would miss them."""
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in KEYWORDS
                and node.args
                and not _is_literal(node.args[0])
            ):
                yield (
                    f"{_rel(path)}:{node.lineno}: {node.func.id}() needs a string literal "
                    "msgid (format after translating)"
                )


# ------------------------------------------------------------------------------ helpers


def _is_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def extracted() -> list[Message]:
    """Every msgid in the source, merged across call sites, sorted for stable output."""
    catalog = Catalog(fuzzy=False)
    for path in _source_files():
        location = _rel(path)
        for _lineno, msgid, comments, context in extract_from_file(
            "python",
            path,
            keywords=KEYWORDS,
            comment_tags=COMMENT_TAGS,
            strip_comment_tags=True,
        ):
            catalog.add(
                msgid, locations=[(location, None)], auto_comments=comments, context=context
            )
    messages = [message for message in catalog if message.id]
    for message in messages:
        message.locations = sorted(set(message.locations))
    return sorted(messages, key=lambda message: str(message.id))


def read_catalog(locale: str) -> Catalog:
    with po_path(locale).open("rb") as fp:
        return read_po(fp, locale=locale, domain=DOMAIN)


def po_path(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"


def mo_differences(locale: str) -> str:
    """What the compiled file gets wrong about its .po; empty when they agree."""
    path = mo_path(locale)
    if not path.exists():
        return "missing"
    with path.open("rb") as fp:
        compiled = {m.id: m.string for m in read_mo(fp) if m.id}
    wanted = {
        m.id: m.string for m in read_catalog(locale) if m.id and _is_translated(m) and not m.fuzzy
    }
    every = set(compiled) | set(wanted)
    stale = sorted((i for i in every if compiled.get(i) != wanted.get(i)), key=str)
    if not stale:
        return ""
    return f"stale ({len(stale)} entries differ from the .po, e.g. {_short(stale[0])})"


def _is_translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(strings)


def _write_po(path: Path, catalog: Catalog) -> bool:
    buffer = io.BytesIO()
    write_po(buffer, catalog, sort_output=True, include_lineno=False, ignore_obsolete=True)
    content = buffer.getvalue()
    if path.exists() and _stable_lines(path.read_bytes()) == _stable_lines(content):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def _stable_lines(content: bytes) -> list[bytes]:
    return [line for line in content.splitlines() if not line.startswith(_VOLATILE_HEADERS)]


def _source_files() -> Iterable[Path]:
    return sorted(path for path in SOURCE.rglob("*.py") if "__pycache__" not in path.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


def _short(msgid: object) -> str:
    text = msgid[0] if isinstance(msgid, tuple) else str(msgid)
    return repr(text if len(text) <= 60 else text[:59] + "…")


def _show(value: object) -> str:
    if isinstance(value, Counter):
        return "{" + ", ".join(f"{key}×{count}" for key, count in sorted(value.items())) + "}"
    if isinstance(value, set):
        return "{" + ", ".join(sorted(value)) + "}"
    return repr(value)


def _report(what: str, path: Path) -> None:
    sys.stdout.write(f"{what} {_rel(path)}\n")


if __name__ == "__main__":
    sys.exit(main())
