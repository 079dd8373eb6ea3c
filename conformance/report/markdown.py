"""GitHub-flavoured Markdown summary of one platform's report.

Every string taken from the report goes through ``md_escape``. Sections that only some reports have (the benchmark's
figures) are passed in by the format registry (report/formats.py), so this module knows no package that adds one.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..model import OUTCOMES, PASS, CaseResult, Report
from .gfm import md_escape, table
from .vocabulary import ANCHOR_HEADERS, anchor_rows, cases_by_area, fact_rows, value_text

# A section of its own after the cases: the report's lines for it, or none when the report has nothing to show there.
Section = Callable[[Report], "list[str]"]


def _outcome_cell(outcome: str) -> str:
    # Bold everything but a pass so problems stand out when skimming.
    text = md_escape(outcome)
    return text if outcome == PASS else f"**{text}**"


def _reason_cell(case: CaseResult) -> str:
    parts = [md_escape(case.reason)] if case.reason else []
    expectation = case.expectation
    if expectation:
        parts.append(f"Expected {md_escape(expectation.outcome)}: {md_escape(expectation.reason)}")
    return "<br>".join(parts)


def _case_row(case: CaseResult) -> list[str]:
    observations = "<br>".join(f"{md_escape(key)} = {md_escape(value)}" for key, value in case.observations.items())
    references = "<br>".join(md_escape(ref) for ref in case.all_references())
    return [md_escape(case.label), _outcome_cell(case.outcome), _reason_cell(case), observations, references]


def _summary_lines(report: Report) -> list[str]:
    summary = report.summary
    counts = " · ".join(f"{value_text(summary[outcome])} {outcome}" for outcome in OUTCOMES)
    lines = [f"**Summary:** {counts} ({len(report.cases)} cases)"]
    mismatched = report.summary_mismatch()
    if mismatched:
        lines += ["", f"> **Warning:** summary counts disagree with the listed cases for: {', '.join(mismatched)}"]
    return lines


def _unmatched_lines(report: Report) -> list[str]:
    if not report.unmatched_deviations:
        return []
    rows = [[md_escape(entry.case), md_escape(entry.reason), md_escape(entry.source)]
            for entry in report.unmatched_deviations]
    return ["", "## Expectation entries that match no case", "",
            "Each documents a deviation of a case the suite no longer has: remove or rename it.", "",
            *table(["Case", "Reason", "Where"], rows)]


def _anchor_lines(report: Report) -> list[str]:
    if not report.anchors:
        return []
    return ["", "## Anchor suites", "",
            "What the kernel's selftests, FreeBSD's and XNU's tests, LTP, fstests and CPython check, behaviour by "
            "behaviour (conformance/traceability.toml), and how the behaviours mapped to cases fared in this run.", "",
            *table(ANCHOR_HEADERS, [[md_escape(cell) for cell in row] for row in anchor_rows(report)])]


def render_markdown(report: Report, sections: Iterable[Section] = ()) -> str:
    """The report as GitHub-flavoured Markdown, then each extra section that has something to show."""
    lines = [f"# Conformance report: {md_escape(report.platform.id)}", ""]
    lines += table(["Fact", "Value"], [[label, md_escape(text)] for label, text in fact_rows(report)])
    lines += ["", *_summary_lines(report), *_anchor_lines(report), "", "## Capabilities", ""]
    capabilities = report.platform.capabilities
    if capabilities:
        rows = [
            [md_escape(name), "yes" if probe.supported else "**no**", md_escape(probe.reason)]
            for name, probe in sorted(capabilities.items())
        ]
        lines += table(["Probe", "Supported", "Reason"], rows)
    else:
        lines.append("No capability probes recorded.")
    lines += ["", "## Cases"]
    for area, cases in cases_by_area(report.cases).items():
        lines += ["", f"### {md_escape(area)}", ""]
        lines += table(["Case", "Outcome", "Reason", "Observations", "References"], [_case_row(c) for c in cases])
    if not report.cases:
        lines += ["", "No cases recorded."]
    lines += _unmatched_lines(report)
    for section in sections:
        lines += section(report)
    return "\n".join(lines) + "\n"
