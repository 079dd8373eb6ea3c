"""A self-contained HTML page for one platform's report, readable at a glance.

The summary grid (areas against outcomes, an inline SVG picture) comes first, then one table of every case, the
failures first and the passing cases hidden until asked for, then the platform, its anchors and its probes. Filters
by outcome and by area are radio buttons and CSS sibling rules, so that they work without a script; the free-text
filter is the page's one script, which the content security policy names by its hash. Every string from the report
is escaped (``page.esc``), and class names and ids come only from fixed tables and positions.
"""

from __future__ import annotations

from ..model import OUTCOMES, PASS, CaseResult, Report, severity
from .page import BASE_CSS, OUTCOME_CLASS, GridCell, esc, outcome_class, page_head, summary_grid
from .vocabulary import ANCHOR_HEADERS, anchor_rows, cases_by_area, count, fact_rows

NOT_PASSING = "not-passing"  # the outcome filter a page opens with: everything but pass

_RUN_CSS = """
table.cases { width: 100%; table-layout: fixed; }
table.cases col.case { width: 28%; } table.cases col.outcome { width: 7.5em; } table.cases col.reason { width: 32%; }
table.cases col.observations { width: 17%; }
table.cases thead th { overflow-wrap: normal; }
table.cases td.references summary { cursor: pointer; color: #0969da; }
table.cases tbody th { background: #f6f8fa; font-weight: normal; }
table.cases tbody th small { display: block; color: #57606a; }
input.text-filter { font: inherit; padding: 0.15em 0.5em; width: 24em; max-width: 90%; }
p.shown .count::after { content: counter(shown); }
main { counter-reset: shown; }
tr.case { counter-increment: shown; }
"""

# The free-text filter: a row stays when its text holds every word typed. Without scripts the field stays hidden.
FILTER_SCRIPT = """
(function () {
  var field = document.getElementById("text-filter");
  field.hidden = false;
  field.addEventListener("input", function () {
    var words = field.value.toLowerCase().split(/\\s+/).filter(Boolean);
    document.querySelectorAll("tr.case").forEach(function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
    });
  });
})();
"""


def _filter_css(areas: int) -> str:
    selected = "background: #0969da; color: #fff;"
    rules = [f"#outcome-{NOT_PASSING}:checked ~ main tr.case.is-{PASS} {{ display: none; }}"]
    rules += [f"#outcome-{o}:checked ~ main tr.case:not(.is-{o}) {{ display: none; }}" for o in OUTCOMES]
    rules += [f"#area-{n}:checked ~ main tr.case:not(.a-{n}) {{ display: none; }}" for n in range(1, areas + 1)]
    rules += [f"#{name}:checked ~ nav label[for={name}] {{ {selected} }}"
              for name in ("outcome-all", f"outcome-{NOT_PASSING}", *(f"outcome-{o}" for o in OUTCOMES),
                           "area-all", *(f"area-{n}" for n in range(1, areas + 1)))]
    return "\n".join(rules)


def _facts(report: Report) -> list[str]:
    rows = [f'<tr><th scope="row">{esc(label)}</th><td>{esc(text)}</td></tr>' for label, text in fact_rows(report)]
    return ['<table class="facts"><tbody>', *rows, "</tbody></table>"]


def _summary(report: Report) -> list[str]:
    summary = report.summary
    badges = "".join(
        f'<span class="{outcome_class(outcome)}"><b class="count">{esc(summary[outcome])}</b> {esc(outcome)}</span>'
        for outcome in OUTCOMES
    )
    lines = [f'<p class="summary">{badges} ({esc(len(report.cases))} cases)</p>']
    mismatched = report.summary_mismatch()
    if mismatched:
        lines.append(
            f'<p class="warning">Summary counts disagree with the listed cases for: {esc(", ".join(mismatched))}</p>'
        )
    return lines


def _grid(report: Report) -> list[str]:
    """Areas down the side, outcomes across: how many cases of each area had each outcome."""
    areas = cases_by_area(report.cases)
    if not areas:
        return []
    cells = []
    for area, cases in areas.items():
        counts = {outcome: sum(1 for case in cases if case.outcome == outcome) for outcome in OUTCOMES}
        cells.append([GridCell(outcome if counts[outcome] else None, str(counts[outcome]) if counts[outcome] else "",
                               f"{area}: {count(counts[outcome], 'case')} {outcome}") for outcome in OUTCOMES])
    return [summary_grid("Cases by area and outcome", list(areas), list(OUTCOMES), cells)]


def _capabilities(report: Report) -> list[str]:
    capabilities = report.platform.capabilities
    if not capabilities:
        return ["<p>No capability probes recorded.</p>"]
    rows = [
        f"<tr><td><code>{esc(name)}</code></td><td>{'yes' if probe.supported else '<b>no</b>'}</td>"
        f'<td class="reason">{esc(probe.reason)}</td></tr>'
        for name, probe in sorted(capabilities.items())
    ]
    head = "<thead><tr><th>Probe</th><th>Supported</th><th>Reason</th></tr></thead>"
    refused = sum(1 for probe in capabilities.values() if not probe.supported)
    # The cases already say which probe made them unsupported; the table is there for whoever asks.
    return [f"<details><summary>{count(len(capabilities), 'probe')}, {refused} unsupported</summary>",
            f"<table>{head}<tbody>", *rows, "</tbody></table></details>"]


def _list(items: list[str]) -> str:
    # Items are already escaped markup.
    return '<ul class="plain">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items else ""


def _reason(case: CaseResult) -> str:
    """The reason once: an expectation whose reason the case's already opens with is named, not repeated."""
    reason = esc(case.reason)
    expectation = case.expectation
    if expectation:
        said = expectation.reason and expectation.reason in case.reason
        text = f"Expected {esc(expectation.outcome)}" + ("" if said else f": {esc(expectation.reason)}")
        reason += f'<div class="expectation">{text}</div>'
    return reason


def _case_row(case: CaseResult, area_number: int) -> str:
    observations = _list(
        [f"<code>{esc(key)}</code> = <code>{esc(value)}</code>" for key, value in case.observations.items()]
    )
    references = case.all_references()
    # Whole, one click away: three references a row made the page three times as tall.
    listed = (f"<details><summary>{count(len(references), 'reference')}</summary>"
              f"{_list([esc(ref) for ref in references])}</details>" if references else "")
    outcome = case.outcome
    known = outcome if outcome in OUTCOMES else "unknown"
    return (
        f'<tr class="case is-{known} a-{area_number}"><th scope="row"><small>{esc(case.area)}</small>'
        f"<code>{esc(case.label)}</code></th>"
        f'<td class="outcome {outcome_class(outcome)}">{esc(outcome)}</td>'
        f'<td class="reason">{_reason(case)}</td><td>{observations}</td><td class="references">{listed}</td></tr>'
    )


def _order(case: CaseResult) -> tuple:
    """Failures first, then the other outcomes worst first; within one outcome by area, then by case."""
    return (severity(case.outcome) if case.outcome in OUTCOMES else -1, case.area, case.id)


def _filters(report: Report, areas: list[str]) -> list[str]:
    inputs = [f'<input class="filter" type="radio" name="outcome" id="outcome-{NOT_PASSING}" checked>',
              '<input class="filter" type="radio" name="outcome" id="outcome-all">']
    inputs += [f'<input class="filter" type="radio" name="outcome" id="outcome-{o}">' for o in OUTCOMES]
    inputs.append('<input class="filter" type="radio" name="area" id="area-all" checked>')
    inputs += [f'<input class="filter" type="radio" name="area" id="area-{n}">' for n in range(1, len(areas) + 1)]
    passing = sum(1 for case in report.cases if case.outcome == PASS)
    outcome_labels = "".join(
        f'<label for="outcome-{o}" class="{OUTCOME_CLASS[o]}">{esc(o)} '
        f"({sum(1 for c in report.cases if c.outcome == o)})"
        "</label>"
        for o in OUTCOMES
    )
    area_labels = "".join(f'<label for="area-{n}">{esc(area)}</label>' for n, area in enumerate(areas, 1))
    return inputs + [
        '<nav class="filters">',
        f'<div>Outcome: <label for="outcome-{NOT_PASSING}">all but pass ({len(report.cases) - passing})</label>'
        f'<label for="outcome-all">all ({len(report.cases)})</label>{outcome_labels}</div>',
        f'<div>Area: <label for="area-all">all</label>{area_labels}</div>',
        '<div><input class="text-filter" id="text-filter" type="search" placeholder="Filter by any text in a row" '
        'aria-label="Filter by text" hidden></div>',
        "</nav>",
    ]


def _cases(report: Report, areas: list[str]) -> list[str]:
    if not report.cases:
        return ["<p>No cases recorded.</p>"]
    number = {area: n for n, area in enumerate(areas, 1)}
    columns = "".join(f"<th>{name}</th>" for name in ("Case", "Outcome", "Reason", "Observations", "References"))
    colgroup = "".join(f'<col class="{name}">' for name in ("case", "outcome", "reason", "observations", "references"))
    return [
        f'<table class="cases"><colgroup>{colgroup}</colgroup><thead><tr>{columns}</tr></thead><tbody>',
        *(_case_row(case, number[case.area]) for case in sorted(report.cases, key=_order)),
        "</tbody></table>",
        '<p class="shown">Cases shown: <span class="count"></span> (the passing ones under "all" or "pass")</p>',
    ]


def _unmatched(report: Report) -> list[str]:
    if not report.unmatched_deviations:
        return []
    rows = [f"<tr><td><code>{esc(entry.case)}</code></td><td>{esc(entry.reason)}</td><td>{esc(entry.source)}</td></tr>"
            for entry in report.unmatched_deviations]
    return ["<h2>Expectation entries that match no case</h2>",
            "<p>Each documents a deviation of a case the suite no longer has: remove or rename it.</p>",
            "<table><thead><tr><th>Case</th><th>Reason</th><th>Where</th></tr></thead><tbody>", *rows,
            "</tbody></table>"]


def _anchors(report: Report) -> list[str]:
    if not report.anchors:
        return []
    head = "".join(f"<th>{esc(header)}</th>" for header in ANCHOR_HEADERS)
    rows = ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in anchor_rows(report)]
    return ["<h2>Anchor suites</h2>",
            "<p>What the kernel's selftests, FreeBSD's and XNU's tests, LTP, fstests and CPython check, behaviour by "
            "behaviour, and how the behaviours mapped to cases fared in this run.</p>",
            f"<table><thead><tr>{head}</tr></thead><tbody>", *rows, "</tbody></table>"]


def render_html(report: Report) -> str:
    """The report as one standalone HTML5 page."""
    platform_id = esc(report.platform.id)
    areas = list(cases_by_area(report.cases))
    lines = [
        *page_head(f"Conformance report: {platform_id}", BASE_CSS + _RUN_CSS + _filter_css(len(areas)),
                   FILTER_SCRIPT),
        "<body>",
        f"<h1>Conformance report: <code>{platform_id}</code></h1>",
        *_summary(report),
        *_grid(report),
        *_filters(report, areas),
        "<main>",
        "<h2>Cases</h2>",
        *_cases(report, areas),
        *_unmatched(report),
        "<h2>Platform</h2>",
        *_facts(report),
        *_anchors(report),
        "<h2>Capabilities</h2>",
        *_capabilities(report),
        "</main>",
        f"<script>{FILTER_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"
