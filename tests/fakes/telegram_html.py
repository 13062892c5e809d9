"""Telegram's HTML parse mode, as strict as the Bot API server.

`parse_html(text)` turns a message written with parse_mode=HTML into the visible text and its
entities, or raises `HtmlParseError` with a message in Telegram's wording. Offsets and lengths
are in UTF-16 code units, because that is how Telegram counts them (and the 4096/1024 limits).

Deliberately stricter than the real server in one place: a bare `&` that starts no entity is an
error here, while Telegram keeps it literally. The Bot API docs ask for `&amp;`, and a bot that
escapes with `html.escape` never notices the difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# https://core.telegram.org/bots/api#html-style
_ENTITY_OF_TAG = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_TAG_NAME_RE = re.compile(r"[a-zA-Z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")


class HtmlParseError(ValueError):
    """The text is not valid Telegram HTML; str() is the detail after "can't parse entities: "."""


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the visible text
    attrs: dict[str, str]


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> tuple[str, list[dict]]:
    """Return (visible text, entities) or raise HtmlParseError."""
    out: list[str] = []
    out_len = 0  # UTF-16 length of "".join(out)
    stack: list[_OpenTag] = []
    entities: list[dict] = []
    i = 0
    n = len(text)

    def byte_offset(pos: int) -> int:
        return len(text[:pos].encode("utf-8"))

    def emit(chunk: str) -> None:
        nonlocal out_len
        out.append(chunk)
        out_len += utf16_len(chunk)

    while i < n:
        ch = text[i]
        if ch == "&":
            decoded, i = _decode_entity(text, i, byte_offset)
            emit(decoded)
            continue
        if ch != "<":
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            emit(text[i:j])
            i = j
            continue

        tag_at = i
        if i + 1 < n and text[i + 1] == "/":
            end = text.find(">", i)
            if end == -1:
                raise HtmlParseError(f"Unclosed end tag at byte offset {byte_offset(tag_at)}")
            name = text[i + 2 : end].strip().lower()
            if not stack:
                raise HtmlParseError(
                    f'Unexpected end tag "{name}" at byte offset {byte_offset(tag_at)}'
                )
            open_tag = stack.pop()
            if open_tag.name != name:
                raise HtmlParseError(
                    f"Unmatched end tag at byte offset {byte_offset(tag_at)}, "
                    f'expected "</{open_tag.name}>", found "</{name}>"'
                )
            _close(open_tag, out_len, stack, entities)
            i = end + 1
            continue

        match = _TAG_NAME_RE.match(text, i + 1)
        name = match.group(0).lower() if match else ""
        i = match.end() if match else i + 1
        if not name:
            raise HtmlParseError(f"Empty tag name at byte offset {byte_offset(tag_at)}")
        if name not in _ENTITY_OF_TAG:
            raise HtmlParseError(
                f'Unsupported start tag "{name}" at byte offset {byte_offset(tag_at)}'
            )
        attrs, i = _parse_attributes(text, i, tag_at, byte_offset)
        _check_attributes(name, attrs, stack, byte_offset(tag_at))
        stack.append(_OpenTag(name=name, start=out_len, attrs=attrs))

    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _decode_entity(text: str, i: int, byte_offset) -> tuple[str, int]:
    match = _ENTITY_RE.match(text, i)
    if match is None:
        raise HtmlParseError(
            f'Character "&" at byte offset {byte_offset(i)} must be escaped as "&amp;"'
        )
    body = match.group(1)
    if body.startswith("#"):
        code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise HtmlParseError(f"Invalid character code at byte offset {byte_offset(i)}")
        return chr(code), match.end()
    if body not in _NAMED_ENTITIES:
        raise HtmlParseError(f'Unsupported HTML entity "&{body};" at byte offset {byte_offset(i)}')
    return _NAMED_ENTITIES[body], match.end()


def _parse_attributes(text: str, i: int, tag_at: int, byte_offset) -> tuple[dict[str, str], int]:
    attrs: dict[str, str] = {}
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {byte_offset(tag_at)}")
        if text[i] == ">":
            return attrs, i + 1
        match = _ATTR_NAME_RE.match(text, i)
        if match is None:
            raise HtmlParseError(
                f"Expected equal sign in declaration of an attribute of the tag at byte "
                f"offset {byte_offset(tag_at)}"
            )
        attr = match.group(0).lower()
        i = match.end()
        if i < n and text[i] == "=":
            i += 1
            if i < n and text[i] in "\"'":
                quote = text[i]
                end = text.find(quote, i + 1)
                if end == -1:
                    raise HtmlParseError(
                        f"Unclosed start tag at byte offset {byte_offset(tag_at)}"
                    )
                raw, i = text[i + 1 : end], end + 1
            else:
                j = i
                while j < n and not text[j].isspace() and text[j] != ">":
                    j += 1
                raw, i = text[i:j], j
            attrs[attr] = _decode_attribute(raw)
        else:
            attrs[attr] = ""


def _decode_attribute(raw: str) -> str:
    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        if body.startswith("#"):
            return chr(int(body[2:], 16) if body[1] in "xX" else int(body[1:]))
        return _NAMED_ENTITIES.get(body, match.group(0))

    return _ENTITY_RE.sub(replace, raw)


def _check_attributes(
    name: str, attrs: dict[str, str], stack: list[_OpenTag], at_byte: int
) -> None:
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at_byte}')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise HtmlParseError(
            f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {at_byte}'
        )
    if name == "a" and not attrs.get("href"):
        raise HtmlParseError(f'Tag "a" must have attribute "href" at byte offset {at_byte}')
    if (
        stack
        and stack[-1].name in {"pre", "code"}
        and not (stack[-1].name == "pre" and name == "code")
    ):
        # Telegram allows no formatting inside code and pre, apart from <pre><code class=...>.
        raise HtmlParseError(
            f'Tag "{name}" can\'t be nested in tag "{stack[-1].name}" at byte offset {at_byte}'
        )


def _close(tag: _OpenTag, end: int, stack: list[_OpenTag], entities: list[dict]) -> None:
    length = end - tag.start
    if tag.name == "code" and stack and stack[-1].name == "pre":
        # <pre><code class="language-python"> sets the language of the enclosing pre.
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].attrs["language"] = language.removeprefix("language-")
        return
    if length == 0:
        return
    entity: dict = {"type": _ENTITY_OF_TAG[tag.name], "offset": tag.start, "length": length}
    if tag.name == "a":
        entity["url"] = tag.attrs["href"]
    elif tag.name == "pre" and tag.attrs.get("language"):
        entity["language"] = tag.attrs["language"]
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    entities.append(entity)
