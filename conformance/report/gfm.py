"""GitHub-flavoured Markdown primitives: escaping report text, and tables.

Every string taken from a report goes through ``md_escape``: report text comes from kernels, error messages and test
parameters, and GitHub renders inline HTML.
"""

from __future__ import annotations

from typing import Any

from .text import visible
from .vocabulary import value_text

# Applied in one pass, so nothing we insert is escaped twice. A backslash is doubled so a
# trailing one cannot pair with the escape in front of a pipe; the other punctuation
# would start code, emphasis or links; <, > and & become entities so no HTML survives.
_MD_TABLE = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "|": "\\|",
        "*": "\\*",
        "_": "\\_",
        "~": "\\~",
        "[": "\\[",
        "]": "\\]",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\n": "<br>",
    }
)


def md_escape(value: Any) -> str:
    """Escape a value for use anywhere in Markdown, including inside a table cell. Other control characters
    have no business in a cell, and the page may be printed to a terminal: they become visible escapes."""
    text = value_text(value).replace("\r\n", "\n").replace("\r", "\n")
    return visible(text.translate(_MD_TABLE))


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GFM table; cells must already be escaped."""
    return [table_row(header), table_row(["---"] * len(header)), *(table_row(row) for row in rows)]


def collapsed(summary: str, body: list[str]) -> list[str]:
    """A section GitHub shows closed; the blank lines let a table inside render as Markdown."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>"]
