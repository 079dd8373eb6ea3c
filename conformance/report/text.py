"""Report text made safe for a terminal, a page or a line-based format (diff output, KTAP, messages).

Report strings come from kernels, error messages and test parameters. Printed raw, a newline could forge
a line of output and an escape sequence could rewrite the reader's terminal; a page would carry the raw
bytes to whoever saves or copies it. ``one_line`` shows such characters as visible escapes instead, and
doubles backslashes so the result stays unambiguous; ``visible`` does the same but keeps backslashes and
the characters a format can carry (a page keeps its line breaks).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from .vocabulary import value_text

_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Control characters (C0, C1, NEL), format characters (bidirectional overrides, zero-width characters),
# line and paragraph separators (str.splitlines and some editors break lines there), and lone surrogates
# (a JSON "\ud800" escape, which no output encoding accepts).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def char_escape(char: str) -> str:
    """``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN`` for one character."""
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


# Backslashes and C0/C1 controls, the characters a report's text most often holds (tracebacks, messages): the text
# between them is passed whole when it is printable, so that a long reason costs C speed, not a loop per character.
_COMMON = re.compile(r"([\\\x00-\x1f\x7f-\x9f])")


def _escaped(text: str, keep: str, also: str, backslash: str) -> str:
    if text.isprintable() and not also and "\\" not in text:
        return text  # the common case, at C speed: isprintable is False for every unsafe category
    out = []
    for piece in _COMMON.split(text):
        if len(piece) > 1 and piece.isprintable() and not (also and any(char in also for char in piece)):
            out.append(piece)  # printable, so no unsafe category in it
        else:
            _escape_chars(piece, keep, also, backslash, out)
    return "".join(out)


def _escape_chars(text: str, keep: str, also: str, backslash: str, out: list) -> None:
    for char in text:
        if char == "\\":
            out.append(backslash)
        elif char in keep:
            out.append(char)
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char in also or unicodedata.category(char) in _UNSAFE_CATEGORIES:
            out.append(char_escape(char))
        else:
            out.append(char)


def visible(value: Any, keep: str = "") -> str:
    """``value`` with every control, format and separator character and lone surrogate shown as an escape
    (``\\x1b``), except the characters in ``keep``; backslashes stay as they are."""
    return _escaped(value_text(value), keep, "", "\\")


def one_line(value: Any, limit: int | None = None, also: str = "") -> str:
    """``value`` as one printable line; characters in ``also`` are escaped too, and the result is
    shortened to ``limit`` characters with an ellipsis."""
    text = _escaped(value_text(value), "", also, "\\\\")
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text
