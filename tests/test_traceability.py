"""conformance/traceability.toml holds the suite to the anchor suites: every behaviour they check is mapped to cases
that exist (or says why it is out of scope), the reports say how each anchor fared, and the README's table is the
file's. The loader and the states are checked on crafted text and cases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conformance import traceability
from conformance.model import BEHAVIOUR_STATES, CaseResult
from conformance.report.load import read_report
from conformance.traceability import Behaviour, TraceabilityError

ROOT = Path(__file__).resolve().parents[1]
ENTRY = '[[behaviour]]\nanchor = "A"\nat = "1"\ncase = "c"\nbehaviour = "b"\n'


def test_every_behaviour_is_mapped_to_cases_or_out_of_scope_with_a_reason():
    behaviours = traceability.load()
    assert len(behaviours) >= 142
    assert all(bool(b.cases) != bool(b.out_of_scope) for b in behaviours)
    unique = Counter((b.anchor, b.case) for b in behaviours)
    assert [key for key, count in unique.items() if count > 1] == []


@pytest.mark.timeout(900)  # its setup may run the whole suite once for the session (conftest.WALL)
def test_every_case_pattern_names_a_case_of_the_suite(serial_run):
    (path,) = serial_run.report_dir.glob("*.json")
    ids = [case.id for case in read_report(path).cases]
    assert traceability.unknown_patterns(traceability.load(), ids) == []


@pytest.mark.timeout(900)
def test_a_report_of_the_whole_suite_says_how_every_anchor_fared(serial_run):
    (path,) = serial_run.report_dir.glob("*.json")
    report = read_report(path)
    behaviours = traceability.load()
    assert [entry.anchor for entry in report.anchors] == list(dict.fromkeys(b.anchor for b in behaviours))
    for entry in report.anchors:
        assert set(entry.states) <= set(BEHAVIOUR_STATES)
        assert sum(entry.states.values()) + entry.out_of_scope == entry.behaviours, entry
        assert entry.states.get("not run", 0) == 0, f"{entry.anchor}: a mapped behaviour none of whose cases ran"
    assert sum(entry.behaviours for entry in report.anchors) == len(behaviours)


@pytest.mark.parametrize(("text", "complaint"), [
    (ENTRY, "give either `cases` or `out_of_scope`"),
    (ENTRY + 'cases = ["rights/test_a"]\nout_of_scope = "why"\n', "not both or neither"),
    (ENTRY + 'cases = ["rights/test_a"]\nextra = 1\n', "unknown field(s) extra"),
    (ENTRY.replace('case = "c"', 'case = ""') + 'cases = ["rights/test_a"]\n', "`case` must be a non-empty string"),
    (ENTRY + "cases = [1]\n", "`cases` must be a list of case id patterns"),
    ('[[behaviour\n', "traceability.toml:"),
    ('other = 1\n', "expected [[behaviour]] entries and nothing else"),
])
def test_a_broken_file_is_refused_in_one_line_naming_the_entry(text, complaint):
    with pytest.raises(TraceabilityError) as raised:
        traceability.load(text)
    assert complaint in str(raised.value) and "\n" not in str(raised.value)


def test_a_pattern_without_params_stands_for_every_parametrisation():
    assert traceability.matches("rights/test_a", "rights/test_a")
    assert traceability.matches("rights/test_a", "rights/test_a[stream]")
    assert not traceability.matches("rights/test_a", "rights/test_ab")
    assert traceability.matches("rights/test_a[*-cycle]", "rights/test_a[dgram-cycle]")
    assert not traceability.matches("rights/test_a[*-cycle]", "rights/test_a[dgram-self]")
    assert traceability.unknown_patterns([Behaviour("A", "1", "c", "b", ("rights/test_z",))], ["rights/test_a"]) == [
        "A c: rights/test_z"]


def _case(case_id: str, outcome: str) -> CaseResult:
    return CaseResult(id=case_id, outcome=outcome)


def test_the_worst_outcome_of_its_cases_decides_a_behaviours_state():
    behaviours = [Behaviour("A", "1", f"c{i}", "b", (f"rights/test_{i}",)) for i in range(5)]
    behaviours.append(Behaviour("A", "1", "gone", "b", (), "not this suite's subject"))
    behaviours.append(Behaviour("B", "1", "c", "b", ("rights/test_0",)))
    cases = [_case("rights/test_0", "pass"), _case("rights/test_0x", "fail"),
             _case("rights/test_1", "unsupported"),
             _case("rights/test_2[a]", "pass"), _case("rights/test_2[b]", "fail"),
             _case("rights/test_3", "deviation")]
    a, b = traceability.coverage(cases, behaviours)
    assert (a.anchor, a.behaviours, a.out_of_scope) == ("A", 6, 1)
    assert a.states == {"checked": 1, "unsupported": 1, "failing": 1, "deviating": 1, "not run": 1}
    assert (b.anchor, b.states) == ("B", {"checked": 1})


def test_the_readme_table_is_the_files():
    behaviours = traceability.load()
    expected = []
    for anchor in dict.fromkeys(b.anchor for b in behaviours):
        mine = [b for b in behaviours if b.anchor == anchor]
        out = sum(1 for b in mine if b.out_of_scope)
        expected.append(f"| {anchor} | {mine[0].at} | {len(mine)} | {len(mine) - out} | {out} |")
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert [line for line in readme if line in expected] == expected, "\n".join(expected)
