"""The matrix as one self-contained HTML page, with filters that need no script.

The summary grid (areas against platforms, each cell in the colour of the worst outcome there, an inline SVG
picture) comes first, then the platforms, one row each, then the cases of each area, those whose outcome differs
between platforms first and marked. Platform columns are narrow (P1, P2, ... with the legend above; short outcome
words past six platforms), a cell's whole text is on hover and opened in place. Filters are hidden radio buttons and
a checkbox placed before ``<main>``; CSS sibling rules hide rows (``#outcome-fail:checked ~ main
tr.case:not(.has-fail)``). The page keeps the single report's policy: no script and no fetch at all, and every
string from a report is escaped. Class names and ids come from fixed tables or from positions, never from report
text.
"""

from __future__ import annotations

from ..model import OUTCOMES, PASS, SEVERITY, CaseResult, worst
from .lineup import CaseRow, ObservationRow, differing
from .matrix import Column, Matrix
from .page import BASE_CSS, OUTCOME_CLASS, SHORT, GridCell, esc, legend, page_head, summary_grid
from .vocabulary import MISSING, MISSING_TEXT, NOT_RUN, NOT_RUN_TEXT, count, platform_rows, value_text

CELL_OUTCOMES = (*OUTCOMES, NOT_RUN)
_CELL_CLASS = {**OUTCOME_CLASS, NOT_RUN: "o-not-run"}

WIDE = 6  # up to this many platforms a cell spells its outcome; past it, the legend's short words

_MATRIX_CSS = """
table.matrix { width: 100%; table-layout: fixed; }
table.matrix col.case { width: 24em; }
table.matrix th.platform { font-weight: normal; text-align: center; padding: 0.3em 0.1em; }
table.matrix th.platform b { display: block; }
table.matrix th.platform small { display: block; color: #57606a; overflow: hidden; text-overflow: ellipsis; }
table.matrix tbody th { background: #f6f8fa; font-weight: normal; }
table.matrix tr.differs > th { background: #fff8c5; box-shadow: inset 4px 0 #d4a72c; }
table.matrix tr.differs > th::before { content: "≠ "; font-weight: bold; color: #9a6700; }
table.platforms { width: 100%; font-size: 0.85em; }
table.platforms .summary span { margin: 0 0.2em 0.2em 0; padding: 0 0.4em; }
td.cell { text-align: center; padding: 0.3em 0.1em; position: relative; overflow-wrap: normal; }
td.cell details > div { position: absolute; right: 0; z-index: 3; width: 24em; margin-top: 0.3em; text-align: left;
  background: #fff; color: #1f2328; padding: 0.4em; border: 1px solid #d0d7de; border-radius: 0.2em;
  overflow-wrap: anywhere; }
td.cell summary { cursor: pointer; list-style: none; text-decoration: underline dotted; }
td.cell summary::-webkit-details-marker { display: none; }
p.shown .count::after { content: counter(shown); }
main { counter-reset: shown; }
tr.case { counter-increment: shown; }
"""


def _filter_css(areas: list[str]) -> str:
    rules = []
    for index in range(1, len(areas) + 1):
        rules.append(f"#area-{index}:checked ~ main section.area:not(.a-{index}) {{ display: none; }}")
        rules.append(f"#area-{index}:checked ~ main tr.obs:not(.a-{index}) {{ display: none; }}")
        rules.append(f"#area-{index}:checked ~ nav label[for=area-{index}] {{ background: #0969da; color: #fff; }}")
    for outcome in CELL_OUTCOMES:
        rules.append(f"#outcome-{outcome}:checked ~ main tr.case:not(.has-{outcome}) {{ display: none; }}")
        rules.append(f"#outcome-{outcome}:checked ~ nav label[for=outcome-{outcome}] {{ outline: 3px solid #0969da; }}")
    rules.append("#area-all:checked ~ nav label[for=area-all] { background: #0969da; color: #fff; }")
    rules.append("#outcome-all:checked ~ nav label[for=outcome-all] { background: #0969da; color: #fff; }")
    rules.append("#only-diff:checked ~ main tr.same { display: none; }")
    rules.append("#only-diff:checked ~ nav label[for=only-diff] { background: #0969da; color: #fff; }")
    return "\n".join(rules)


def _platform_heading(number: int, column: Column) -> str:
    platform = column.report.platform
    return (f'<th class="platform" scope="col" title="{esc(column.id)}"><b>P{number}</b>'
            f"<small>{esc(platform.os)}</small></th>")


def _head(matrix: Matrix, first: str) -> str:
    cells = "".join(_platform_heading(n, column) for n, column in enumerate(matrix.columns, 1))
    cols = '<col class="case">' + "<col>" * len(matrix.columns)
    return f"<colgroup>{cols}</colgroup><thead><tr><th>{first}</th>{cells}</tr></thead>"


def _grid(matrix: Matrix) -> list[str]:
    """Areas down the side, platforms across: each cell in the colour of the worst outcome the platform had in that
    area, with how many cases had it (all its counts on hover)."""
    if not matrix.areas or not matrix.columns:
        return []
    cells = []
    for area, rows in matrix.areas.items():
        line = []
        for index, column in enumerate(matrix.columns):
            outcomes = [row.cells[index].outcome for row in rows if row.cells[index] is not None]
            counts = {o: outcomes.count(o) for o in SEVERITY if o in outcomes}
            title = f"{area} on {column.id}: " + (", ".join(f"{n} {o}" for o, n in counts.items()) or NOT_RUN_TEXT)
            if not outcomes:
                line.append(GridCell(NOT_RUN, SHORT[NOT_RUN], title))
                continue
            bad = worst(outcomes)
            line.append(GridCell(bad, f"{counts[bad]} {SHORT[bad]}", title))
        cells.append(line)
    columns = [f"P{n}" for n in range(1, len(matrix.columns) + 1)]
    return [summary_grid("The worst outcome of each area on each platform", list(matrix.areas), columns, cells),
            legend(CELL_OUTCOMES)]


def _platforms(matrix: Matrix) -> list[str]:
    """One row per platform: the legend of the P1, P2, ... columns."""
    labels = [label for label, _ in platform_rows(matrix.columns[0].report.platform)] if matrix.columns else []
    head = "".join(f"<th>{esc(label)}</th>" for label in ("", "Platform id", *labels, "Summary", "Report"))
    rows = []
    for number, column in enumerate(matrix.columns, 1):
        facts = "".join(f"<td>{esc(text)}</td>" for _, text in platform_rows(column.report.platform))
        badges = "".join(
            f'<span class="{OUTCOME_CLASS[o]}">{esc(column.report.summary[o])} {esc(o)}</span>'
            for o in OUTCOMES
            if column.report.summary[o]
        )
        rows.append(f'<tr><th scope="row">P{number}</th><td><code>{esc(column.id)}</code></td>{facts}'
                    f'<td class="summary">{badges}</td><td>{esc(column.source)}</td></tr>')
    return [f'<table class="platforms"><thead><tr>{head}</tr></thead><tbody>', *rows, "</tbody></table>"]


def _filters(matrix: Matrix) -> list[str]:
    areas = list(matrix.areas)
    inputs = ['<input class="filter" type="radio" name="area" id="area-all" checked>']
    inputs += [f'<input class="filter" type="radio" name="area" id="area-{n}">' for n in range(1, len(areas) + 1)]
    inputs.append('<input class="filter" type="radio" name="outcome" id="outcome-all" checked>')
    inputs += [f'<input class="filter" type="radio" name="outcome" id="outcome-{o}">' for o in CELL_OUTCOMES]
    inputs.append('<input class="filter" type="checkbox" id="only-diff">')
    rows = matrix.rows()
    area_labels = "".join(
        f'<label for="area-{n}">{esc(area)} ({len(matrix.areas[area])})</label>' for n, area in enumerate(areas, 1)
    )
    outcome_labels = "".join(
        f'<label for="outcome-{o}" class="{_CELL_CLASS[o]}">{esc(NOT_RUN_TEXT if o == NOT_RUN else o)} '
        f"({sum(1 for row in rows if o in row.outcomes)})</label>"
        for o in CELL_OUTCOMES
    )
    changed = differing(rows)
    nav = [
        '<nav class="filters">',
        f'<div>Area: <label for="area-all">all</label>{area_labels}</div>',
        f'<div>Cases with an outcome on some platform: <label for="outcome-all">any</label>{outcome_labels}</div>',
        f'<div><label for="only-diff">only differences ({count(changed, "case")})</label></div>',
        "</nav>",
    ]
    return inputs + nav


def _cell_title(column: Column, case: CaseResult) -> str:
    parts = [f"{case.outcome} on {column.id}"]
    if case.reason:
        parts.append(case.reason)
    if case.expectation:
        parts.append(f"expected {case.expectation.outcome}: {case.expectation.reason}")
    parts += [f"{key} = {value_text(value)}" for key, value in case.observations.items()]
    return "\n".join(parts)


def _cell(column: Column, case: CaseResult | None, narrow: bool) -> str:
    if case is None:
        return (f'<td class="cell {_CELL_CLASS[NOT_RUN]}" title="{esc(NOT_RUN_TEXT + " on " + column.id)}">'
                f"{SHORT[NOT_RUN] if narrow else NOT_RUN_TEXT}</td>")
    outcome = case.outcome
    word = esc(SHORT.get(outcome, outcome) if narrow else outcome)
    cls = _CELL_CLASS.get(outcome, "o-unknown")
    title = esc(_cell_title(column, case))
    details = []
    if case.reason:
        details.append(f'<div class="reason">{esc(case.reason)}</div>')
    if case.expectation:
        expected = case.expectation
        details.append(f'<div class="expectation">Expected {esc(expected.outcome)}: {esc(expected.reason)}</div>')
    if case.observations:
        observed = case.observations.items()
        items = "".join(f"<li><code>{esc(key)}</code> = <code>{esc(value)}</code></li>" for key, value in observed)
        details.append(f'<div><ul class="plain">{items}</ul></div>')
    if not details:
        return f'<td class="cell {cls}" title="{title}">{word}</td>'
    body = "".join(details)
    return f'<td class="cell {cls}" title="{title}"><details><summary>{word}</summary>{body}</details></td>'


def _case_row(matrix: Matrix, row: CaseRow) -> str:
    present = sorted(set(row.outcomes), key=CELL_OUTCOMES.index)
    classes = ["case", *(f"has-{o}" for o in present), "differs" if row.differs else "same"]
    narrow = len(matrix.columns) > WIDE
    cells = "".join(_cell(column, case, narrow) for column, case in zip(matrix.columns, row.cells))
    return f'<tr class="{" ".join(classes)}"><th scope="row"><code>{esc(row.label)}</code></th>{cells}</tr>'


def _order(row: CaseRow) -> tuple:
    """Rows that differ between platforms first, then those that do not pass everywhere; otherwise by case id."""
    return (not row.differs, all(outcome == PASS for outcome in row.outcomes), row.id)


def _cases(matrix: Matrix) -> list[str]:
    lines = []
    for number, (area, rows) in enumerate(matrix.areas.items(), 1):
        changed = differing(rows)
        lines += [
            f'<section class="area a-{number}">',
            f"<h2>{esc(area)} <small>({count(len(rows), 'case')}, {changed} differ)</small></h2>",
            f'<table class="matrix">{_head(matrix, "Case")}<tbody>',
            *(_case_row(matrix, row) for row in sorted(rows, key=_order)),
            "</tbody></table></section>",
        ]
    if not matrix.areas:
        lines.append("<p>No cases in any report.</p>")
    lines.append('<p class="shown">Cases shown: <span class="count"></span></p>')
    return lines


def _observation_row(row: ObservationRow, area_number: dict[str, int]) -> str:
    missing = f'<td class="{_CELL_CLASS[NOT_RUN]}">{MISSING_TEXT}</td>'
    cells = "".join(missing if value is MISSING else f"<td><code>{esc(value)}</code></td>" for value in row.values)
    classes = f"obs a-{area_number.get(row.area, 0)} {'differs' if row.differs else 'same'}"
    return f'<tr class="{classes}"><th scope="row"><code>{esc(row.key)}</code></th>{cells}</tr>'


def _observations(matrix: Matrix) -> list[str]:
    if not matrix.observations:
        return ['<section class="observations"><h2>Observations</h2><p>No observations in any report.</p></section>']
    area_number = {area: n for n, area in enumerate(matrix.areas, 1)}
    changed = differing(matrix.observations)
    return [
        '<section class="observations">',
        f"<h2>Observations <small>({count(len(matrix.observations), 'key')}, {changed} differ)</small></h2>",
        f'<table class="matrix">{_head(matrix, "Observation")}<tbody>',
        *(_observation_row(row, area_number) for row in matrix.observations),
        "</tbody></table></section>",
    ]


def render_matrix_html(matrix: Matrix) -> str:
    lines = [
        *page_head("Conformance matrix", BASE_CSS + _MATRIX_CSS + _filter_css(list(matrix.areas))),
        "<body>",
        "<h1>Conformance matrix</h1>",
        f'<p class="lede">{matrix.headline()} Rows marked ≠ differ between platforms and come first in each area. '
        "Hover over a cell for its reason and observations, or open it.</p>",
        *_grid(matrix),
        "<h2>Platforms</h2>",
        *_platforms(matrix),
        *_filters(matrix),
        "<main>",
        *_cases(matrix),
        *_observations(matrix),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"
