"""The matrix as one self-contained HTML page, with filters that need no script.

Filters are hidden radio buttons and a checkbox placed before ``<main>``; CSS sibling rules hide rows
(``#outcome-fail:checked ~ main tr.case:not(.has-fail)``). The page therefore keeps the single report's
policy: no script and no fetch at all, and every string from a report is escaped. Class names and ids
come from fixed tables or from positions, never from report text.
"""

from __future__ import annotations

from ..model import OUTCOMES, CaseResult
from .html import BASE_CSS, OUTCOME_CLASS, esc, page_head
from .lineup import CaseRow, ObservationRow, differing
from .matrix import Column, Matrix
from .vocabulary import MISSING, MISSING_TEXT, NOT_RUN, NOT_RUN_TEXT, count, value_text

CELL_OUTCOMES = (*OUTCOMES, NOT_RUN)
_CELL_CLASS = {**OUTCOME_CLASS, NOT_RUN: "o-not-run"}

_MATRIX_CSS = """
.o-not-run { background: repeating-linear-gradient(45deg, #fff, #fff 4px, #eaeef2 4px, #eaeef2 8px); color: #57606a; }
input.filter { position: absolute; opacity: 0; pointer-events: none; }
nav.filters { padding: 0.4em 0; border-bottom: 1px solid #d0d7de; margin-bottom: 1em; }
nav.filters div { margin: 0.2em 0; }
nav.filters label { display: inline-block; margin: 0 0.2em 0.2em 0; padding: 0.15em 0.6em; border: 1px solid #d0d7de;
  border-radius: 1em; cursor: pointer; user-select: none; }
table.matrix th.platform { min-width: 7em; font-weight: normal; }
table.matrix th.platform b { display: block; }
table.matrix thead th { position: sticky; top: 0; z-index: 2; }
table.matrix tbody th { position: sticky; left: 0; background: #f6f8fa; z-index: 1; font-weight: normal; }
td.cell { white-space: nowrap; }
td.cell details { white-space: normal; }
td.cell details > div { max-width: 32em; margin-top: 0.3em; background: #fff; color: #1f2328; padding: 0.3em;
  border-radius: 0.2em; }
td.cell summary { cursor: pointer; }
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
    role = "root" if platform.privileged else "user"
    lines = [
        f"{platform.os} {platform.release}",
        f"{platform.arch} · {role} · {platform.filesystem_type}",
        f"{platform.python} · {platform.libc}",
    ]
    body = "<br>".join(esc(line) for line in lines)
    return f'<th class="platform" scope="col" title="{esc(column.id)}"><b>P{number}</b>{body}</th>'


def _head(matrix: Matrix, first: str) -> str:
    cells = "".join(_platform_heading(n, column) for n, column in enumerate(matrix.columns, 1))
    return f"<thead><tr><th>{first}</th>{cells}</tr></thead>"


def _platforms(matrix: Matrix) -> list[str]:
    names = "".join(f"<th>P{n}</th>" for n in range(1, len(matrix.columns) + 1))
    rows = [f"<tr><th>Platform id</th>{''.join(f'<td><code>{esc(c.id)}</code></td>' for c in matrix.columns)}</tr>"]
    labels = [label for label, _ in matrix.columns[0].facts()] if matrix.columns else []
    for index, label in enumerate(labels):
        cells = "".join(f"<td>{esc(column.facts()[index][1])}</td>" for column in matrix.columns)
        rows.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
    summaries = []
    for column in matrix.columns:
        badges = "".join(
            f'<span class="{OUTCOME_CLASS[o]}">{esc(column.report.summary[o])} {esc(o)}</span>'
            for o in OUTCOMES
            if column.report.summary[o]
        )
        summaries.append(f'<td class="summary">{badges}</td>')
    rows.append(f"<tr><th>Summary</th>{''.join(summaries)}</tr>")
    rows.append(f"<tr><th>Report</th>{''.join(f'<td>{esc(c.source)}</td>' for c in matrix.columns)}</tr>")
    return [f'<table class="platforms"><thead><tr><th></th>{names}</tr></thead><tbody>', *rows, "</tbody></table>"]


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


def _cell(column: Column, case: CaseResult | None) -> str:
    if case is None:
        return (f'<td class="cell {_CELL_CLASS[NOT_RUN]}" title="{esc(NOT_RUN_TEXT + " on " + column.id)}">'
                f"{NOT_RUN_TEXT}</td>")
    outcome = case.outcome
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
        return f'<td class="cell {cls}" title="{title}">{esc(outcome)}</td>'
    body = "".join(details)
    return f'<td class="cell {cls}" title="{title}"><details><summary>{esc(outcome)}</summary>{body}</details></td>'


def _case_row(matrix: Matrix, row: CaseRow) -> str:
    present = sorted(set(row.outcomes), key=CELL_OUTCOMES.index)
    classes = ["case", *(f"has-{o}" for o in present), "differs" if row.differs else "same"]
    cells = "".join(_cell(column, case) for column, case in zip(matrix.columns, row.cells))
    return f'<tr class="{" ".join(classes)}"><th scope="row"><code>{esc(row.label)}</code></th>{cells}</tr>'


def _cases(matrix: Matrix) -> list[str]:
    lines = []
    for number, (area, rows) in enumerate(matrix.areas.items(), 1):
        changed = differing(rows)
        lines += [
            f'<section class="area a-{number}">',
            f"<h2>{esc(area)} <small>({count(len(rows), 'case')}, {changed} differ)</small></h2>",
            f'<table class="matrix">{_head(matrix, "Case")}<tbody>',
            *(_case_row(matrix, row) for row in rows),
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
        f'<p class="lede">{matrix.headline()} Hover over a cell for its reason and observations, or open it.</p>',
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
