"""What the single-run page and the matrix page share: escaping, the page's head and style, the outcome colours and
the summary grid, an inline SVG picture of areas against outcomes or platforms.

Every string from a report is escaped with ``html.escape(quote=True)``, its control characters shown as visible
escapes; class names, ids, colours and coordinates come only from fixed tables and positions, never from report
text. The content security policy lets no fetch happen and no script run but the page's own, named by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from typing import Any, Sequence

from ..model import DEVIATION, ERROR, FAIL, OUTCOMES, PASS, UNEXPECTED_PASS, UNSUPPORTED
from .text import visible
from .vocabulary import NOT_RUN

# Class names come from this table, never from report data.
OUTCOME_CLASS = {outcome: f"o-{outcome}" for outcome in OUTCOMES}
# Background and text colour of each outcome's badges and cells.
OUTCOME_COLOURS = {
    PASS: ("#1f883d", "#fff"),
    FAIL: ("#cf222e", "#fff"),
    DEVIATION: ("#f0b429", "#000"),
    UNEXPECTED_PASS: ("#8250df", "#fff"),
    UNSUPPORTED: ("#d0d7de", "#000"),
    ERROR: ("#3d0a0a", "#fff"),
}
NOT_RUN_COLOURS = ("#f6f8fa", "#57606a")
# What a narrow cell says for each outcome; the legend spells them out.
SHORT = {PASS: "ok", FAIL: "FAIL", DEVIATION: "dev", UNEXPECTED_PASS: "xpass", UNSUPPORTED: "n/a", ERROR: "err",
         NOT_RUN: "–"}

BASE_CSS = """
body { font-family: system-ui, sans-serif; margin: 1em 1.5em; color: #1f2328; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.5em; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
table.cases :is(th, td), table.matrix :is(th, td) { overflow-wrap: anywhere; }
th { background: #f6f8fa; }
code { font-family: ui-monospace, monospace; font-size: 0.92em; }
ul.plain { margin: 0; padding-left: 1.1em; }
.reason { white-space: pre-wrap; }
.expectation { margin-top: 0.3em; font-style: italic; }
.summary span { display: inline-block; margin: 0 0.4em 0.4em 0; padding: 0.2em 0.6em; border-radius: 0.3em; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5em; }
.o-unknown { background: #fff; color: #000; }
.o-not-run { background: repeating-linear-gradient(45deg, #fff, #fff 4px, #eaeef2 4px, #eaeef2 8px); color: #57606a; }
td.outcome { font-weight: bold; white-space: nowrap; }
svg.grid { display: block; max-width: 100%; height: auto; margin: 0.5em 0 1em; }
svg.grid text { font: 12px system-ui, sans-serif; }
p.legend span { display: inline-block; margin: 0 0.3em 0.3em 0; padding: 0 0.4em; border-radius: 0.2em; }
thead th { position: sticky; top: 0; z-index: 2; }
tbody th { position: sticky; left: 0; z-index: 1; }
input.filter { position: absolute; opacity: 0; pointer-events: none; }
nav.filters { padding: 0.4em 0; border-bottom: 1px solid #d0d7de; margin-bottom: 1em; }
nav.filters div { margin: 0.2em 0; }
nav.filters label { display: inline-block; margin: 0 0.2em 0.2em 0; padding: 0.15em 0.6em; border: 1px solid #d0d7de;
  border-radius: 1em; cursor: pointer; user-select: none; }
""" + "".join(f".{OUTCOME_CLASS[outcome]} {{ background: {background}; color: {colour}; }}\n"
              for outcome, (background, colour) in OUTCOME_COLOURS.items())


def esc(value: Any) -> str:
    """Escape any report value for element content or a quoted attribute. HTML escaping leaves control
    characters as they are, so those (but tabs and line breaks) become visible escapes first: a page never
    carries a raw ESC or BEL to whoever copies it into a terminal."""
    return html.escape(visible(value, keep="\t\n"), quote=True)


def outcome_class(outcome: Any) -> str:
    return OUTCOME_CLASS.get(outcome, "o-unknown") if isinstance(outcome, str) else "o-unknown"


def script_hash(script: str) -> str:
    """The CSP source that lets exactly this inline script run."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def page_head(title: str, css: str, script: str = "") -> list[str]:
    """The opening of a standalone page; ``title`` must already be escaped. ``script``, fixed text of the renderer,
    is the only script the page may run; with none, no script may run at all."""
    scripts = f"; script-src {script_hash(script)}" if script else ""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        # Nothing on the page needs a fetch; forbid it outright, and every script but the page's own.
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'"
        f'{scripts}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>{css}</style>",
        "</head>",
    ]


def legend(outcomes: Sequence[str]) -> str:
    """The short words of narrow cells, each in its outcome's colour."""
    classes = {**OUTCOME_CLASS, NOT_RUN: "o-not-run"}
    spans = "".join(f'<span class="{classes[o]}">{esc(SHORT[o])} = {esc(o.replace("-", " "))}</span>'
                    for o in outcomes)
    return f'<p class="legend">{spans}</p>'


@dataclass
class GridCell:
    """One cell of the summary grid: the outcome its colour stands for (None: empty), its text and its hover text."""

    outcome: str | None
    text: str
    title: str


_LABEL_WIDTH = 150  # px for the area names down the side
_ROW_HEIGHT = 22
_HEAD_HEIGHT = 24
_MAX_WIDTH = 1300  # the grid fits a 1,400 px window beside the page's margins


def summary_grid(caption: str, rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[GridCell]]) -> str:
    """An inline SVG picture: ``rows`` (areas) down the side, ``columns`` across, each cell filled with its outcome's
    colour and its text, its ``title`` shown on hover. It scales down with the window, never wider than the page."""
    column_width = max(40, min(110, (_MAX_WIDTH - _LABEL_WIDTH) // max(len(columns), 1)))
    width = _LABEL_WIDTH + column_width * len(columns)
    height = _HEAD_HEIGHT + _ROW_HEIGHT * len(rows)
    parts = [f'<svg class="grid" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{esc(caption)}</title>']
    for index, column in enumerate(columns):
        x = _LABEL_WIDTH + column_width * index + column_width // 2
        parts.append(f'<text x="{x}" y="16" text-anchor="middle">{esc(column)}</text>')
    for row_index, (row, row_cells) in enumerate(zip(rows, cells)):
        y = _HEAD_HEIGHT + _ROW_HEIGHT * row_index
        parts.append(f'<text x="4" y="{y + 15}">{esc(row)}</text>')
        for index, cell in enumerate(row_cells):
            x = _LABEL_WIDTH + column_width * index
            background, colour = (OUTCOME_COLOURS.get(cell.outcome, NOT_RUN_COLOURS) if cell.outcome is not None
                                  else ("#fff", "#57606a"))
            parts.append(
                f'<g><title>{esc(cell.title)}</title><rect x="{x + 1}" y="{y + 1}" width="{column_width - 2}" '
                f'height="{_ROW_HEIGHT - 2}" fill="{background}"/><text x="{x + column_width // 2}" y="{y + 15}" '
                f'text-anchor="middle" fill="{colour}">{esc(cell.text)}</text></g>'
            )
    parts.append("</svg>")
    return "".join(parts)
