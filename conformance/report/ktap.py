"""KTAP (version 1) text of one platform's report, for kernel CI tooling.

Follows the Linux kernel's Documentation/dev-tools/ktap.rst: a ``KTAP version 1`` line and a
plan, then one nested test per area (indented two spaces, with its own version line and plan)
whose subtests are the area's cases, numbered from 1, each preceded by its diagnostic lines.

Report text comes from kernels, error messages and test parameters, so every string taken
from the report is escaped before it reaches a line: backslashes are doubled and control,
format and line-separator characters become visible escapes (``\\x1b``, ``\\n``, ``\\u2028``),
so nothing can end a line early or reach a terminal as an escape sequence; ``#`` is escaped
in test descriptions and directive reasons, where it would end the description or start a
directive; and a few strings that line-based KTAP readers treat specially are defused
(see ``diagnostic`` and ``_KUNIT_END_MARKERS``). Every line that carries report text
therefore starts with ``#`` or with a result and number this module wrote.

The pieces (a case's lines, an area's result line, the header and the totals) are shared with
plugin/ktap_stream.py, which writes the same KTAP while the run goes, so both escape alike.
"""

from __future__ import annotations

import re

from ..model import (
    DEVIATION,
    ERROR,
    FAIL,
    FAILING,
    PASS,
    UNEXPECTED_PASS,
    UNSUPPORTED,
    CaseResult,
    Platform,
    Report,
    Suite,
    summary_of,
)
from .text import char_escape, one_line
from .vocabulary import cases_by_area, value_text

NO_CASES = "# no cases recorded"
INDENT = "  "  # ktap.rst, "Nested tests": one level of indentation is two spaces.

# Our outcomes as KTAP result lines: (result, directive; None for no directive).
# - pass:            "ok"                ktap.rst "Test case result lines"; kselftest.h ksft_test_result_pass
# - fail:            "not ok"            ktap.rst; kselftest.h ksft_test_result_fail. No "#" data on the line:
#                                        a reason there would be read as a directive if it began with a keyword.
# - deviation:       "ok ... # XFAIL r"  ktap.rst lists XFAIL ("a test is expected to fail", as kselftest uses it);
#                                        kselftest.h ksft_test_result_xfail prints "ok %u # XFAIL ".
# - unexpected-pass: "ok ... # XPASS r"  kselftest.h ksft_test_result_xpass prints "ok %u # XPASS ". ktap.rst does
#                                        not list XPASS; it says a parser should fall back to ok / not ok for a
#                                        directive it does not know, which gives "ok" (the run passes unless
#                                        --strict, so "ok" is also what the result means).
# - unsupported:     "ok ... # SKIP r"   ktap.rst SKIP ("ok 1 test # SKIP necessary dependency unavailable");
#                                        kselftest.h ksft_test_result_skip prints "ok %u # SKIP ".
# - error:           "not ok ... # ERROR r"  ktap.rst lists ERROR, "the result ... should be not ok".
#                                        kselftest.h ksft_test_result_error prints "not ok %u # error " in lower
#                                        case; we use the spelling the spec lists. kunit_parser.py recognises only
#                                        SKIP and reads either spelling as a plain failure, which is right.
RESULT_LINES = {
    PASS: ("ok", None),
    FAIL: ("not ok", None),
    DEVIATION: ("ok", "XFAIL"),
    UNEXPECTED_PASS: ("ok", "XPASS"),
    UNSUPPORTED: ("ok", "SKIP"),
    ERROR: ("not ok", "ERROR"),
}
# A failing outcome (model.FAILING) makes the area's own result line "not ok" (ktap.rst: if a subtest fails, the
# parent should fail too; skipped subtests do not affect the parent).

# kselftest's closing "# Totals:" line uses these names for the same results.
_KSELFTEST_COUNTS = (
    ("pass", PASS),
    ("fail", FAIL),
    ("xfail", DEVIATION),
    ("xpass", UNEXPECTED_PASS),
    ("skip", UNSUPPORTED),
    ("error", ERROR),
)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# kunit_parser.py stops collecting diagnostic lines at "# Subtest: <name>" and reads it as the
# header of a nested test.
_SUBTEST_HEADER = re.compile(r"\s*subtest\s*:", re.IGNORECASE)
# kunit_parser.py stops reading at the first line that contains one of these, wherever it is
# on the line; escaping a colon keeps the text readable and the parser reading.
_KUNIT_END_MARKERS = (
    ("List of all partitions:", "List of all partitions\\x3a"),
    ("Kernel panic - not syncing: VFS:", "Kernel panic - not syncing: VFS\\x3a"),
    ("reboot: System halted", "reboot\\x3a System halted"),
)


def _text_lines(value: object) -> list[str]:
    """A multi-line text as its lines; each line still needs escaping."""
    return _LINE_BREAK.split(value_text(value))


def diagnostic(text: str) -> str:
    """A diagnostic line ("# ...") carrying one line of report text, escaped."""
    escaped = one_line(text)
    match = _SUBTEST_HEADER.match(escaped)
    if match:
        # Escape the "S" (or "s") so the line cannot open a nested test in kunit_parser.py.
        start = match.end() - len(match.group().lstrip())
        escaped = escaped[:start] + char_escape(escaped[start]) + escaped[start + 1 :]
    return f"# {escaped}" if escaped else "#"


def _first_line(text: str) -> str:
    return next((line for line in _text_lines(text) if line.strip()), "")


def _result_line(result: str, number: int, description: str, directive: str | None = None, reason: str = "") -> str:
    line = f"{result} {number} {one_line(description, also='#')}"
    if directive:
        line += f" # {directive}"
        reason = one_line(_first_line(reason), also="#").strip()
        if reason:
            line += f" {reason}"
    return line


def case_lines(case: CaseResult, number: int) -> list[str]:
    """A case's diagnostic lines, then its result line numbered `number`, not yet indented."""
    outcome = case.outcome
    lines = []
    if outcome != PASS and case.reason:
        lines += [diagnostic(line) for line in _text_lines(case.reason)]
    expectation = case.expectation
    if expectation:
        first, *rest = _text_lines(expectation.reason)
        lines.append(diagnostic(f"expected {expectation.outcome}: {first}"))
        lines += [diagnostic(line) for line in rest]
    for key, value in case.observations.items():
        # One line each: a line break inside a key or value is escaped rather than split.
        lines.append(diagnostic(f"{value_text(key)} = {value_text(value)}"))
    result, directive = RESULT_LINES[outcome]
    lines.append(_result_line(result, number, case.label, directive, case.reason))
    return lines


def not_run_lines(label: str, number: int, reason: str) -> list[str]:
    """The lines of a case that has no result (it did not run, or did not finish): an error saying why."""
    return [diagnostic(reason), _result_line("not ok", number, label, "ERROR", reason)]


def subtest_header(area: str) -> str:
    """kunit's "# Subtest: <name>" line, which names a nested test before its results (kunit_parser.py reads the
    name from it, and checks the result line against it)."""
    return f"# Subtest: {one_line(area, also='#')}"


def area_result_line(area: str, outcomes: set[str], number: int) -> str:
    """An area's own result line, from the outcomes of its cases."""
    if outcomes & FAILING:
        return _result_line("not ok", number, area)
    if outcomes == {UNSUPPORTED}:
        # ktap.rst: "it often makes sense for a test to be marked skipped if all of its subtests
        # have been skipped".
        return _result_line("ok", number, area, "SKIP", "every case is unsupported here")
    return _result_line("ok", number, area)


def _area_lines(area: str, cases: list[CaseResult], number: int) -> list[str]:
    nested = ["KTAP version 1", f"1..{len(cases)}"]
    for index, case in enumerate(cases, start=1):
        nested += case_lines(case, index)
    return [INDENT + line for line in nested] + [area_result_line(area, {case.outcome for case in cases}, number)]


def header_diagnostics(suite: Suite, platform: Platform) -> list[str]:
    """What the run was: the suite and the platform, one line each."""
    version = f"{suite.name} {suite.version}"
    if suite.commit:
        version += f" (commit {suite.commit})"
    # Identifiers stay on one line each: a line break in them is escaped, not split.
    return [
        diagnostic(f"suite: {version}"),
        diagnostic(f"platform: {platform.id}"),
        diagnostic(f"kernel: {platform.kernel}"),
    ]


def footer_diagnostics(report: Report) -> list[str]:
    """kselftest's totals, then what the report says beside its cases."""
    counted = summary_of(report.cases)
    totals = " ".join(f"{name}:{counted[outcome]}" for name, outcome in _KSELFTEST_COUNTS)
    lines = [diagnostic(f"Totals: {totals}")]
    lines += [diagnostic(f"expectation entry matching no case: {entry.case} ({entry.source})")
              for entry in report.unmatched_deviations]
    mismatched = report.summary_mismatch()
    if mismatched:
        lines.append(
            diagnostic(f"warning: summary counts disagree with the listed cases for: {', '.join(mismatched)}")
        )
    return lines


def defused(line: str) -> str:
    """The line with every marker at which kunit_parser.py stops reading made harmless."""
    for marker, harmless in _KUNIT_END_MARKERS:
        line = line.replace(marker, harmless)
    return line


def render_ktap(report: Report) -> str:
    """The report as KTAP version 1 text."""
    areas = cases_by_area(report.cases)
    lines = ["KTAP version 1", f"1..{len(areas)}", *header_diagnostics(report.suite, report.platform)]
    if not areas:
        lines.append(NO_CASES)
    for number, (area, cases) in enumerate(areas.items(), start=1):
        lines += _area_lines(area, cases, number)
    lines += footer_diagnostics(report)
    return "\n".join(defused(line) for line in lines) + "\n"
