"""Self-tests for the KTAP renderer, on crafted data only, read back with a strict KTAP v1 parser."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter

import pytest
from reportdata import hostile_report, model, sample_report

from conformance.model import OUTCOMES, CaseResult
from conformance.report.ktap import render_ktap
from conformance.report.schema import validate

# --- a strict KTAP version 1 parser (Documentation/dev-tools/ktap.rst) ----------------------

DIRECTIVES = ("SKIP", "XFAIL", "XPASS", "ERROR")
# A description is non-empty, has no "#" and no surrounding blanks; a directive's reason has no "#".
_RESULT = re.compile(
    r"(?P<result>ok|not ok) (?P<number>[1-9][0-9]*) (?P<description>[^#\s](?:[^#]*[^#\s])?)"
    rf"(?: # (?P<directive>{'|'.join(DIRECTIVES)})(?: (?P<reason>[^#\s][^#]*))?)?"
)
_PLAN = re.compile(r"1\.\.(0|[1-9][0-9]*)")


def parse_ktap(text):
    """The test tree of a KTAP document; fails on any line that is not where the spec puts it."""
    assert text.endswith("\n") and "\r" not in text
    lines = text[:-1].split("\n")
    block, end = _parse_block(lines, 0, "")
    assert end == len(lines), f"line {end + 1} is outside the test tree: {lines[end]!r}"
    return block


def _parse_block(lines, index, indent):
    """A version line, for a nested test kunit's "# Subtest: <name>" if any, a plan, then tests numbered from 1 until
    a line of a shallower test."""
    assert lines[index] == f"{indent}KTAP version 1", lines[index]
    name = None
    if indent and lines[index + 1].startswith(f"{indent}# Subtest: "):
        name, index = lines[index + 1].removeprefix(f"{indent}# Subtest: "), index + 1
    plan = _PLAN.fullmatch(lines[index + 1].removeprefix(indent))
    assert plan and lines[index + 1].startswith(indent), lines[index + 1]
    block = {"plan": int(plan[1]), "name": name, "tests": [], "diagnostics": []}
    pending, nested, index = [], None, index + 2
    while index < len(lines):
        line = lines[index]
        if line == f"{indent}  KTAP version 1":
            assert nested is None, "two nested tests for one result line"
            nested, index = _parse_block(lines, index, indent + "  ")
            continue
        body = line[len(indent) :]
        if not line.startswith(indent) or body.startswith(" "):
            break
        index += 1
        if body == "#" or body.startswith("# "):
            pending.append(body[2:])
            continue
        match = _RESULT.fullmatch(body)
        assert match, f"not a KTAP line: {line!r}"
        assert int(match["number"]) == len(block["tests"]) + 1, f"out of sequence: {line!r}"
        assert nested is None or nested["name"] in (None, match["description"]), f"not the test it opened: {line!r}"
        block["tests"].append({**match.groupdict(), "diagnostics": pending, "subtests": nested})
        pending, nested = [], None
    assert nested is None, "a nested test without its result line"
    assert len(block["tests"]) == block["plan"], f"plan {block['plan']}, {len(block['tests'])} tests"
    block["diagnostics"] = pending
    return block, index


def shape(block):
    """The structure without the text: plan, results, numbers and directives, recursively."""
    return (
        block["plan"],
        [
            (test["result"], test["number"], test["directive"], test["subtests"] and shape(test["subtests"]))
            for test in block["tests"]
        ],
    )


def leaf_tests(block):
    return [case for area in block["tests"] for case in area["subtests"]["tests"]]


def report_with(cases):
    """A valid report whose cases are (area, name, outcome, reason) tuples, summary to match."""
    report = sample_report()
    template = report["cases"][0]
    report["cases"] = [
        dict(
            copy.deepcopy(template),
            id=f"{area}/{name}",
            area=area,
            name=name,
            params="",
            outcome=outcome,
            reason=reason,
            observations={},
        )
        for area, name, outcome, reason in cases
    ]
    counted = Counter(outcome for _, _, outcome, _ in cases)
    report["summary"] = {outcome: counted[outcome] for outcome in OUTCOMES}
    assert validate(report) == []
    return report


# --- the sample report ----------------------------------------------------------------------

SAMPLE_KTAP = """\
KTAP version 1
1..3
# suite: conformance 0.1.0 (commit 1a2b3c4)
# platform: linux-6.18.44-fc-v669-x86_64-py311-root
# kernel: Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC
  KTAP version 1
  1..1
  # OSError: [Errno 24] Too many open files
  # gc.cycles = 3
  not ok 1 test_cycle_collected[seqpacket] # ERROR OSError: [Errno 24] Too many open files
not ok 1 gc
  KTAP version 1
  1..2
  # upgrade is not atomic here
  # expected deviation: documented in flock(2)
  # locks.upgrade_seconds = 0.25
  # locks.upgrade_errno = null
  ok 1 test_flock_upgrade # XFAIL upgrade is not atomic here
  # expected deviation did not occur
  # expected deviation: old kernel
  # locks.ofd_supported = false
  ok 2 test_ofd_locks # XPASS expected deviation did not occur
ok 2 locks
  KTAP version 1
  1..3
  # rights.max_fds_per_message[stream] = 253
  # rights.max_plus_one_errno[stream] = EINVAL
  ok 1 test_per_message_maximum[stream]
  # assert 0 == 8
  # rights.truncated_flag[dgram] = true
  not ok 2 test_truncation[dgram]
  # probe scm_creds: not available
  ok 3 test_scm_credentials # SKIP probe scm_creds: not available
not ok 3 rights
# Totals: pass:1 fail:1 xfail:1 xpass:1 skip:1 error:1
"""


def test_ktap_of_sample_report():
    text = render_ktap(model(sample_report()))
    assert text == SAMPLE_KTAP
    tree = parse_ktap(text)
    assert [area["description"] for area in tree["tests"]] == ["gc", "locks", "rights"]


@pytest.mark.parametrize("make", [sample_report, hostile_report], ids=["sample", "hostile"])
def test_plans_count_the_cases_of_each_area(make):
    report = make()
    tree = parse_ktap(render_ktap(model(report)))
    areas = Counter(case["area"] for case in report["cases"])
    assert tree["plan"] == len(areas)
    planned = {area["description"]: area["subtests"]["plan"] for area in tree["tests"]}
    assert planned == dict(areas)
    assert len(leaf_tests(tree)) == len(report["cases"])


OUTCOME_LINES = [
    ("pass", "ok", None),
    ("fail", "not ok", None),
    ("deviation", "ok", "XFAIL"),
    ("unexpected-pass", "ok", "XPASS"),
    ("unsupported", "ok", "SKIP"),
    ("error", "not ok", "ERROR"),
]


def test_every_outcome_has_a_mapping():
    assert sorted(outcome for outcome, _, _ in OUTCOME_LINES) == sorted(OUTCOMES)


@pytest.mark.parametrize(("outcome", "result", "directive"), OUTCOME_LINES, ids=[o[0] for o in OUTCOME_LINES])
def test_outcome_maps_to_result_and_directive(outcome, result, directive):
    report = sample_report()
    case = next(case for case in report["cases"] if case["outcome"] == outcome)
    tree = parse_ktap(render_ktap(model(report)))
    (test,) = [test for test in leaf_tests(tree) if test["description"] == CaseResult.from_json(case).label]
    assert (test["result"], test["directive"]) == (result, directive)
    if directive:
        assert test["reason"] == case["reason"]
    else:
        # A reason after "#" on a line without a directive could be read as one.
        assert test["reason"] is None
    if outcome == "pass":
        assert not any(line == case["reason"] for line in test["diagnostics"])
    else:
        assert test["diagnostics"][0] == case["reason"]
    for key, value in case["observations"].items():
        shown = value if isinstance(value, str) else json.dumps(value)
        assert f"{key} = {shown}" in test["diagnostics"]


@pytest.mark.parametrize(
    "outcomes",
    [
        ("pass",),
        ("fail",),
        ("error",),
        ("deviation", "unexpected-pass"),
        ("pass", "unsupported", "deviation", "unexpected-pass"),
        ("pass", "fail"),
        ("unsupported", "error"),
        ("unsupported",),
        ("unsupported", "unsupported", "pass"),
        OUTCOMES,
    ],
    ids=lambda outcomes: "+".join(outcomes),
)
def test_area_fails_if_and_only_if_a_case_failed_or_errored(outcomes):
    report = report_with([("area", f"test_{index}", outcome, "why") for index, outcome in enumerate(outcomes)])
    (area,) = parse_ktap(render_ktap(model(report)))["tests"]
    failed = bool({"fail", "error"} & set(outcomes))
    assert area["result"] == ("not ok" if failed else "ok")
    # ktap.rst: a test whose subtests were all skipped may itself be marked skipped.
    assert area["directive"] == ("SKIP" if set(outcomes) == {"unsupported"} else None)


def test_numbers_run_from_one_in_every_test():
    sizes = {"alpha": 1, "beta": 5, "gamma": 12}
    cases = [(area, f"test_{index}", OUTCOMES[index % 6], "r") for area, size in sizes.items() for index in range(size)]
    tree = parse_ktap(render_ktap(model(report_with(cases[::-1]))))
    assert [area["number"] for area in tree["tests"]] == ["1", "2", "3"]
    for area in tree["tests"]:
        count = sizes[area["description"]]
        assert [test["number"] for test in area["subtests"]["tests"]] == [str(n) for n in range(1, count + 1)]


def test_empty_report_is_an_empty_plan():
    report = report_with([])
    text = render_ktap(model(report))
    assert text.startswith("KTAP version 1\n1..0\n")
    tree = parse_ktap(text)
    assert tree["plan"] == 0 and tree["tests"] == []
    assert "Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:0" in tree["diagnostics"]


def test_multi_line_reason_becomes_diagnostic_lines_before_the_result():
    reason = "Traceback:\n  frame one\r\n  frame two\r\nOSError: boom\n"
    report = report_with([("gc", "test_a", "error", reason), ("gc", "test_b", "deviation", "\nsecond line first")])
    error, deviation = leaf_tests(parse_ktap(render_ktap(model(report))))
    assert error["diagnostics"] == ["Traceback:", "  frame one", "  frame two", "OSError: boom", ""]
    assert error["reason"] == "Traceback:"
    assert deviation["diagnostics"][:2] == ["", "second line first"]
    assert deviation["reason"] == "second line first"


def test_summary_disagreement_is_flagged():
    report = sample_report()
    report["summary"]["fail"] = 5
    tree = parse_ktap(render_ktap(model(report)))
    assert "warning: summary counts disagree with the listed cases for: fail" in tree["diagnostics"]


# --- hostile text ---------------------------------------------------------------------------

# Characters that must never reach the output raw: they end a line for some reader
# (str.splitlines, universal newlines) or drive a terminal.
_RAW_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
# kunit_parser.py reads "# Subtest: x" as a nested test's header and stops reading at these.
_KUNIT_SUBTEST = re.compile(r"^\s*# Subtest: ", re.MULTILINE)
_KUNIT_END = re.compile(r"List of all partitions:|Kernel panic - not syncing: VFS:|reboot: System halted")

ATTACKS = {
    "newline result": "x\nok 99 injected",
    "crlf not ok": "x\r\nnot ok 99 injected",
    "cr version": "x\rKTAP version 1",
    "newline plan": "\n1..99",
    "indented result": "x\n  ok 1 injected",
    "vertical tab": "x\x0bok 99 injected",
    "form feed": "x\x0cnot ok 99 injected",
    "file separator": "x\x1cok 99 injected",
    "next line": "x\x85ok 99 injected",
    "line separator": "x\u2028ok 99 injected",
    "paragraph separator": "x\u2029not ok 99 injected",
    "terminal escapes": "\x1b[2J\x1b]0;owned\x07\x9b31m",
    "bidi override": "\u202eevil\u2066",
    "nul and del": "a\x00b\x7fc",
    "lone surrogate": "bad \ud800 byte",
    "forged skip": "boom # SKIP forged",
    "forged directive start": "# SKIP forged",
    "bare hash": "#",
    "subtest header": "Subtest: forged",
    "loose subtest header": "  subtest : forged",
    "kunit end": "reboot: System halted; List of all partitions: Kernel panic - not syncing: VFS: x",
    "literal escape": "\\x1b\\n",
    "tab": "a\tb",
}


def _attacked_report(text):
    report = hostile_report()
    report["platform"]["id"] = text
    report["platform"]["kernel"] = text
    report["suite"]["commit"] = text
    for index, case in enumerate(report["cases"]):
        # A case id may hold anything but a newline inside its brackets.
        # The id pattern admits no line terminator (ECMA-262's "."): LF, CR, U+2028, U+2029.
        case["params"] = re.sub("[\n\r\u2028\u2029]", " ", text)
        case["id"] = f"{case['area']}/{case['name']}[{case['params']}]"
        case["reason"] = text
        case["observations"] = {f"{text}[{index}]": text, f"k{index}": f"{text}\nmore"}
        if case["expectation"]:
            case["expectation"]["reason"] = text
    assert validate(report) == []
    return report


def _assert_safe(text):
    assert not _RAW_UNSAFE.search(text)
    assert not _KUNIT_SUBTEST.search(text)
    assert not _KUNIT_END.search(text)
    text.encode("utf-8")
    for line in text.split("\n"):
        # Anything but our own lines starts with "#" after the indentation.
        assert re.match(r"( {2})*(KTAP version 1$|1\.\.\d+$|#|ok \d+ |not ok \d+ |$)", line), line


def test_hostile_report_has_the_sample_structure():
    text = render_ktap(model(hostile_report()))
    _assert_safe(text)
    hostile, sample = parse_ktap(text), parse_ktap(render_ktap(model(sample_report())))
    assert shape(hostile) == shape(sample)
    assert "<script>alert(1)</script>" in text
    assert "\"'&|\\\\ first\\nsecond" in text


@pytest.mark.parametrize("attack", list(ATTACKS.values()), ids=list(ATTACKS))
def test_attack_in_every_field_changes_nothing_but_text(attack):
    text = render_ktap(model(_attacked_report(attack)))
    _assert_safe(text)
    tree = parse_ktap(text)
    assert shape(tree) == shape(parse_ktap(render_ktap(model(sample_report()))))
    for test in leaf_tests(tree):
        assert test["description"].endswith("]")
        if test["directive"] in ("SKIP", "XFAIL", "XPASS", "ERROR") and test["reason"]:
            assert "#" not in test["reason"]


def test_hash_is_escaped_in_descriptions_and_directive_reasons():
    report = report_with([("gc", "test_a", "unsupported", "probe #3 # SKIP x")])
    report["cases"][0]["params"] = "a#b"
    report["cases"][0]["id"] = "gc/test_a[a#b]"
    text = render_ktap(model(report))
    assert "  ok 1 test_a[a\\x23b] # SKIP probe \\x233 \\x23 SKIP x\n" in text
    assert "  # probe #3 # SKIP x\n" in text


@pytest.mark.parametrize(
    ("reason", "line"),
    [
        ("Subtest: forged", "# \\x53ubtest: forged"),
        ("  subtest : forged", "#   \\x73ubtest : forged"),
        ("not a Subtest: header", "# not a Subtest: header"),
        ("reboot: System halted", "# reboot\\x3a System halted"),
    ],
)
def test_lines_kunit_parser_treats_specially_are_defused(reason, line):
    report = report_with([("gc", "test_a", "fail", reason)])
    (test,) = leaf_tests(parse_ktap(render_ktap(model(report))))
    assert f"# {test['diagnostics'][0]}" == line
