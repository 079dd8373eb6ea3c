"""GitHub-flavoured Markdown summary of one platform's report.

Every string taken from the report goes through ``md_escape``: report text comes from
kernels, error messages and test parameters, and GitHub renders inline HTML.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from .schema import OUTCOMES

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
        # Other control characters have no business in a table cell.
        **{chr(code): " " for code in (*range(0x00, 0x0A), *range(0x0B, 0x20), 0x7F)},
    }
)


def value_text(value: Any) -> str:
    """Plain text for a report value: strings as they are, other scalars as JSON spells them."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def md_escape(value: Any) -> str:
    """Escape a value for use anywhere in Markdown, including inside a table cell."""
    text = value_text(value).replace("\r\n", "\n").replace("\r", "\n")
    return text.translate(_MD_TABLE)


def case_label(case: dict) -> str:
    """The case name with its parameters, as pytest shows it."""
    return f"{case['name']}[{case['params']}]" if case["params"] else case["name"]


def cases_by_area(cases: list[dict]) -> dict[str, list[dict]]:
    """Cases grouped by area; areas sorted so reports from different hosts line up."""
    grouped: dict[str, list[dict]] = {}
    for case in cases:
        grouped.setdefault(case["area"], []).append(case)
    return {area: grouped[area] for area in sorted(grouped)}


def summary_mismatch(report: dict) -> list[str]:
    """Outcomes whose summary count differs from the cases listed (a plugin bug if any)."""
    counted = Counter(case["outcome"] for case in report["cases"])
    return [outcome for outcome in OUTCOMES if counted[outcome] != report["summary"][outcome]]


def all_references(case: dict) -> list[str]:
    """The case's references followed by the expectation's, without repeats."""
    references = list(case["references"])
    if case["expectation"]:
        references += [ref for ref in case["expectation"]["references"] if ref not in references]
    return references


def _seconds(value: Any) -> str:
    # The schema allows any non-negative number, including integers beyond a float's range.
    try:
        return f"{float(value):.2f} s"
    except OverflowError:
        return f"{value_text(value)} s"


def libc_text(platform: dict) -> str:
    return f"{platform['libc']['name']} {platform['libc']['version']}"


def python_text(platform: dict) -> str:
    return f"{platform['python']['implementation']} {platform['python']['version']}"


def fact_rows(report: dict) -> list[tuple[str, str]]:
    """(label, plain text) pairs describing the host and the run; callers escape them."""
    platform, run, suite = report["platform"], report["run"], report["suite"]
    workers = run["workers"]
    return [
        ("OS", platform["os"]),
        ("Release", platform["release"]),
        ("Kernel", platform["kernel"]),
        ("Architecture", platform["arch"]),
        ("libc", libc_text(platform)),
        ("Python", python_text(platform)),
        ("Filesystem", f"{platform['filesystem']['type']} at {platform['filesystem']['path']}"),
        ("Privileged", f"{'yes' if platform['privileged'] else 'no'} (uid {value_text(platform['uid'])})"),
        ("Run started", run["started"]),
        ("Duration", _seconds(run["duration"])),
        ("Workers", f"{value_text(workers)} (serial)" if workers == 0 else value_text(workers)),
        ("Exit status", value_text(run["exit_status"])),
        ("Arguments", " ".join(run["argv"])),
        ("Suite", f"{suite['name']} {suite['version']}" + (f" ({suite['commit']})" if suite["commit"] else "")),
    ]


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GFM table; cells must already be escaped."""
    return [table_row(header), table_row(["---"] * len(header)), *(table_row(row) for row in rows)]


def _outcome_cell(outcome: str) -> str:
    # Bold everything but a pass so problems stand out when skimming.
    text = md_escape(outcome)
    return text if outcome == "pass" else f"**{text}**"


def _reason_cell(case: dict) -> str:
    parts = [md_escape(case["reason"])] if case["reason"] else []
    expectation = case["expectation"]
    if expectation:
        parts.append(f"Expected {md_escape(expectation['outcome'])}: {md_escape(expectation['reason'])}")
    return "<br>".join(parts)


def _case_row(case: dict) -> list[str]:
    observations = "<br>".join(f"{md_escape(key)} = {md_escape(value)}" for key, value in case["observations"].items())
    references = "<br>".join(md_escape(ref) for ref in all_references(case))
    return [md_escape(case_label(case)), _outcome_cell(case["outcome"]), _reason_cell(case), observations, references]


def _summary_lines(report: dict) -> list[str]:
    summary = report["summary"]
    counts = " · ".join(f"{value_text(summary[outcome])} {outcome}" for outcome in OUTCOMES)
    lines = [f"**Summary:** {counts} ({len(report['cases'])} cases)"]
    mismatched = summary_mismatch(report)
    if mismatched:
        lines += ["", f"> **Warning:** summary counts disagree with the listed cases for: {', '.join(mismatched)}"]
    return lines


def render_markdown(report: dict) -> str:
    """Render a report that passes ``schema.validate`` as GitHub-flavoured Markdown."""
    lines = [f"# Conformance report: {md_escape(report['platform']['id'])}", ""]
    lines += table(["Fact", "Value"], [[label, md_escape(text)] for label, text in fact_rows(report)])
    lines += ["", *_summary_lines(report), "", "## Capabilities", ""]
    capabilities = report["platform"]["capabilities"]
    if capabilities:
        rows = [
            [md_escape(name), "yes" if probe["supported"] else "**no**", md_escape(probe["reason"])]
            for name, probe in sorted(capabilities.items())
        ]
        lines += table(["Probe", "Supported", "Reason"], rows)
    else:
        lines.append("No capability probes recorded.")
    lines += ["", "## Cases"]
    for area, cases in cases_by_area(report["cases"]).items():
        lines += ["", f"### {md_escape(area)}", ""]
        lines += table(["Case", "Outcome", "Reason", "Observations", "References"], [_case_row(c) for c in cases])
    if not report["cases"]:
        lines += ["", "No cases recorded."]
    lines += _benchmark_lines(report)
    return "\n".join(lines) + "\n"


def _benchmark_lines(report: dict) -> list[str]:
    """The figures table of a `conformance bench` report (its perf cases); nothing for any other report."""
    from ..bench.table import HEADER, figures

    rows, notes = figures(report)
    if not rows:
        return []
    lines = ["", "## Benchmark", ""]
    lines += table(list(HEADER), [[md_escape(cell) for cell in row] for row in rows])
    return lines + ([""] if notes else []) + [f"- {md_escape(note)}" for note in notes]
