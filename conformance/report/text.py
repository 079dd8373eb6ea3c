"""Report text made safe for a terminal or a line-based format (diff output, KTAP).

Report strings come from kernels, error messages and test parameters. Printed raw, a newline could forge
a line of output and an escape sequence could rewrite the reader's terminal; ``one_line`` shows such
characters as visible escapes instead, and doubles backslashes so the result stays unambiguous.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .vocabulary import value_text

_SHORT_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
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


def one_line(value: Any, limit: int | None = None, also: str = "") -> str:
    """``value`` as one printable line; characters in ``also`` are escaped too, and the result is
    shortened to ``limit`` characters with an ellipsis."""
    out = []
    for char in value_text(value):
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char in also or unicodedata.category(char) in _UNSAFE_CATEGORIES:
            out.append(char_escape(char))
        else:
            out.append(char)
    text = "".join(out)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text
