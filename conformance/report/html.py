"""A self-contained HTML page for one platform's report.

Every string from the report is escaped with ``html.escape(quote=True)``, its control characters
shown as visible escapes, and attribute values come only from fixed tables, so report text can
never become markup nor carry a raw escape sequence. A content security policy forbidding scripts
backs that up.
"""

from __future__ import annotations

import html
from typing import Any

from ..model import DEVIATION, ERROR, FAIL, OUTCOMES, PASS, UNEXPECTED_PASS, UNSUPPORTED, CaseResult, Report
from .text import visible
from .vocabulary import ANCHOR_HEADERS, anchor_rows, cases_by_area, fact_rows

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

BASE_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1f2328; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code { font-family: ui-monospace, monospace; font-size: 0.95em; }
ul.plain { margin: 0; padding-left: 1.1em; }
.reason { white-space: pre-wrap; }
.expectation { margin-top: 0.3em; font-style: italic; }
.summary span { display: inline-block; margin: 0 0.4em 0.4em 0; padding: 0.2em 0.6em; border-radius: 0.3em; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5em; }
.o-unknown { background: #fff; color: #000; }
td.outcome { font-weight: bold; white-space: nowrap; }
""" + "".join(f".{OUTCOME_CLASS[outcome]} {{ background: {background}; color: {colour}; }}\n"
              for outcome, (background, colour) in OUTCOME_COLOURS.items())


def esc(value: Any) -> str:
    """Escape any report value for element content or a quoted attribute. HTML escaping leaves control
    characters as they are, so those (but tabs and line breaks) become visible escapes first: a page never
    carries a raw ESC or BEL to whoever copies it into a terminal."""
    return html.escape(visible(value, keep="\t\n"), quote=True)


def outcome_class(outcome: Any) -> str:
    return OUTCOME_CLASS.get(outcome, "o-unknown") if isinstance(outcome, str) else "o-unknown"


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
    return [f"<table>{head}<tbody>", *rows, "</tbody></table>"]


def _list(items: list[str]) -> str:
    # Items are already escaped markup.
    return '<ul class="plain">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items else ""


def _case_row(case: CaseResult) -> str:
    reason = esc(case.reason)
    expectation = case.expectation
    if expectation:
        reason += f'<div class="expectation">Expected {esc(expectation.outcome)}: {esc(expectation.reason)}</div>'
    observations = _list(
        [f"<code>{esc(key)}</code> = <code>{esc(value)}</code>" for key, value in case.observations.items()]
    )
    references = _list([esc(ref) for ref in case.all_references()])
    outcome = case.outcome
    return (
        f"<tr><td><code>{esc(case.label)}</code></td>"
        f'<td class="outcome {outcome_class(outcome)}">{esc(outcome)}</td>'
        f'<td class="reason">{reason}</td><td>{observations}</td><td>{references}</td></tr>'
    )


def _cases(report: Report) -> list[str]:
    if not report.cases:
        return ["<p>No cases recorded.</p>"]
    columns = "".join(f"<th>{name}</th>" for name in ("Case", "Outcome", "Reason", "Observations", "References"))
    head = f"<thead><tr>{columns}</tr></thead>"
    lines: list[str] = []
    for area, cases in cases_by_area(report.cases).items():
        lines += [f"<section><h3>{esc(area)}</h3>", f'<table class="cases">{head}<tbody>']
        lines += [_case_row(case) for case in cases]
        lines.append("</tbody></table></section>")
    return lines


def page_head(title: str, css: str) -> list[str]:
    """The opening of a standalone page; ``title`` must already be escaped."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        # Nothing on the page needs a script or a fetch; forbid both outright.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>{css}</style>",
        "</head>",
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
    lines = [
        *page_head(f"Conformance report: {platform_id}", BASE_CSS),
        "<body>",
        f"<h1>Conformance report: <code>{platform_id}</code></h1>",
        "<h2>Platform</h2>",
        *_facts(report),
        "<h2>Summary</h2>",
        *_summary(report),
        *_anchors(report),
        "<h2>Capabilities</h2>",
        *_capabilities(report),
        "<h2>Cases</h2>",
        *_cases(report),
        *_unmatched(report),
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"
