"""The matrix as GitHub-flavoured Markdown, sized for a GitHub step summary.

What differs between platforms, or is not a pass, is shown in full; cases that pass everywhere and
observations equal everywhere are listed in collapsed sections. Report text goes through ``md_escape``.
"""

from __future__ import annotations

from ..model import DEVIATION, ERROR, FAIL, OUTCOMES, PASS, UNEXPECTED_PASS, UNSUPPORTED
from .gfm import collapsed, md_escape, table
from .lineup import differing
from .matrix import Matrix
from .vocabulary import MISSING, MISSING_TEXT, NOT_RUN, NOT_RUN_TEXT, count, value_text

# Symbols make a wide table skimmable; the word follows so the page needs no legend to be read.
SYMBOL = {
    PASS: "✅",
    FAIL: "❌",
    DEVIATION: "🟡",
    UNEXPECTED_PASS: "🟣",
    UNSUPPORTED: "⚪",
    ERROR: "💥",
    NOT_RUN: "➖",
}


def outcome_cell(outcome: str) -> str:
    word = NOT_RUN_TEXT if outcome == NOT_RUN else outcome
    return f"{SYMBOL.get(outcome, '?')} {md_escape(word)}"


def _platforms(matrix: Matrix) -> list[str]:
    names = [f"P{n}" for n in range(1, len(matrix.columns) + 1)]
    rows = [["Platform id", *(md_escape(column.id) for column in matrix.columns)]]
    labels = [label for label, _ in matrix.columns[0].facts()] if matrix.columns else []
    for index, label in enumerate(labels):
        rows.append([label, *(md_escape(column.facts()[index][1]) for column in matrix.columns)])
    rows.append(
        [
            "Summary",
            *(
                "<br>".join(f"{SYMBOL[o]} {value_text(column.report.summary[o])} {o}" for o in OUTCOMES)
                for column in matrix.columns
            ),
        ]
    )
    rows.append(["Report", *(md_escape(column.source) for column in matrix.columns)])
    return table(["", *names], rows)


def _area(area: str, rows: list, width: int) -> list[str]:
    shown = [row for row in rows if row.differs or row.outcomes[0] != PASS]
    passing = [row for row in rows if not (row.differs or row.outcomes[0] != PASS)]
    changed = differing(rows)
    lines = ["", f"### {md_escape(area)}: {count(len(rows), 'case')}, {changed} differ between platforms", ""]
    if shown:
        header = ["Case", *(f"P{n}" for n in range(1, width + 1))]
        lines += table(header, [[md_escape(row.label), *map(outcome_cell, row.outcomes)] for row in shown])
    if passing:
        body = [f"- {md_escape(row.label)}" for row in passing]
        lines += ["", *collapsed(f"{count(len(passing), 'case')} passing on every platform", body)]
    return lines


def _value(value) -> str:
    return f"➖ {MISSING_TEXT}" if value is MISSING else md_escape(value)


def _observations(matrix: Matrix) -> list[str]:
    width = len(matrix.columns)
    header = ["Observation", *(f"P{n}" for n in range(1, width + 1))]
    varied = [row for row in matrix.observations if row.differs]
    same = [row for row in matrix.observations if not row.differs]
    total = count(len(matrix.observations), "observation")
    lines = ["", "## Observations", "", f"{total}, {len(varied)} differ.", ""]
    if varied:
        lines += table(header, [[md_escape(row.key), *map(_value, row.values)] for row in varied])
    if same:
        rows = [[md_escape(row.key), _value(row.values[0])] for row in same]
        body = table(["Observation", "Value on every platform"], rows)
        lines += ["", *collapsed(f"{count(len(same), 'observation')} with the same value on every platform", body)]
    return lines


def render_matrix_markdown(matrix: Matrix) -> str:
    lines = [
        "# Conformance matrix",
        "",
        f"{matrix.headline()} Reasons and observations of each cell are on the HTML page.",
        "",
        "## Platforms",
        "",
        *_platforms(matrix),
        "",
        "## Cases",
    ]
    for area, area_rows in matrix.areas.items():
        lines += _area(area, area_rows, len(matrix.columns))
    if not matrix.rows():
        lines += ["", "No cases in any report."]
    lines += _observations(matrix)
    return "\n".join(lines) + "\n"
