"""The words every report page shares: how a value reads, the markers for what is absent, cases grouped by area,
and the rows that describe a platform and a run. Each renderer escapes these for its own format.
"""

from __future__ import annotations

import json
from typing import Any

from ..model import BEHAVIOUR_STATES, CaseResult, Platform, Report


class _Missing:
    """An observation a platform or run did not record (distinct from a recorded null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
NOT_RUN = "not-run"  # a platform or run that did not run a case: a cell of its own, never an outcome
NOT_RUN_TEXT = "not run"
MISSING_TEXT = "not recorded"


def value_text(value: Any) -> str:
    """Plain text for a report value: strings as they are, other scalars as JSON spells them."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def observed_identity(value: Any) -> str:
    """An observed value as the report wrote it, so that 1 and true, 1 and 1.0, 0.0 and -0.0 stay distinct."""
    return "\0missing" if value is MISSING else f"{type(value).__name__}:{value_text(value)}"


def count(number: int, noun: str) -> str:
    """"1 case", "2 cases"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def cases_by_area(cases: list[CaseResult]) -> dict[str, list[CaseResult]]:
    """Cases grouped by area; areas sorted so that reports from different hosts line up."""
    grouped: dict[str, list[CaseResult]] = {}
    for case in cases:
        grouped.setdefault(case.area, []).append(case)
    return {area: grouped[area] for area in sorted(grouped)}


def seconds(value: Any) -> str:
    # The schema allows any non-negative number, including integers beyond a float's range.
    try:
        return f"{float(value):.2f} s"
    except OverflowError:
        return f"{value_text(value)} s"


def privilege(platform: Platform) -> str:
    return f"{'root' if platform.privileged else 'unprivileged'} (uid {value_text(platform.uid)})"


def platform_rows(platform: Platform) -> list[tuple[str, str]]:
    """(label, plain text) rows naming a platform, as the matrix shows each column."""
    return [
        ("OS", f"{platform.os} {platform.release}"),
        ("Kernel", platform.kernel),
        ("Architecture", platform.arch),
        ("libc", platform.libc),
        ("Python", platform.python),
        ("Filesystem", f"{platform.filesystem_type} at {platform.filesystem_path}"),
        ("Privilege", privilege(platform)),
    ]


def fact_rows(report: Report) -> list[tuple[str, str]]:
    """(label, plain text) rows describing the host and the run of one report."""
    platform, run = report.platform, report.run
    workers = run.workers
    return [
        ("OS", platform.os),
        ("Release", platform.release),
        ("Kernel", platform.kernel),
        ("Architecture", platform.arch),
        ("libc", platform.libc),
        ("Python", platform.python),
        ("Filesystem", f"{platform.filesystem_type} at {platform.filesystem_path}"),
        ("Privileged", f"{'yes' if platform.privileged else 'no'} (uid {value_text(platform.uid)})"),
        ("Run started", run.started),
        ("Duration", seconds(run.duration)),
        ("Workers", f"{value_text(workers)} (serial)" if workers == 0 else value_text(workers)),
        ("Exit status", value_text(run.exit_status)),
        ("Arguments", " ".join(run.argv)),
        ("Suite", report.suite.text),
    ]


ANCHOR_HEADERS = ["Anchor suite", "Behaviours", *(state.capitalize() for state in BEHAVIOUR_STATES), "Out of scope"]


def anchor_rows(report: Report) -> list[list[str]]:
    """Per anchor suite: its behaviours, how many of the mapped ones were in each state in this run, and how many are
    out of scope (plain text; the renderer escapes it)."""
    return [[entry.anchor, str(entry.behaviours), *(str(entry.states.get(state, 0)) for state in BEHAVIOUR_STATES),
             str(entry.out_of_scope)] for entry in report.anchors]
