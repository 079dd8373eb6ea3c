"""The report of a real run: it validates, a parallel run reports what a serial run does, and nothing
regressed against this platform's reference report. The runs are conftest.py's, shared with test_leftovers.py."""

from __future__ import annotations

import json
from pathlib import Path

import nested_run
import pytest

from conformance.model import FAILING, Report
from conformance.report import reference
from conformance.report.diff_render import render_text
from conformance.report.load import read_report
from conformance.report.schema import load_schema, validate

ROOT = Path(__file__).resolve().parents[1]

# Both runs may happen in the setup of one test here: conftest.WALL bounds each, the margin is for a loaded machine.
pytestmark = pytest.mark.timeout(900)


def _report(run) -> dict:
    (path,) = run.report_dir.glob("*.json")
    assert not path.name.endswith(".partial.json"), f"the whole suite made an incomplete report: {path}"
    assert nested_run.status_explained(run.status, read_report(path)), run.output[-6000:]
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def reports(serial_run, parallel_run) -> dict:
    return {"serial": _report(serial_run), "parallel": _report(parallel_run)}


def test_every_real_report_validates(reports):
    jsonschema = pytest.importorskip("jsonschema")
    for report in reports.values():
        assert validate(report) == []
        jsonschema.Draft202012Validator(load_schema()).validate(report)


def test_report_lists_every_case_with_references_and_outcome(reports):
    report = reports["serial"]
    assert report["cases"], "no case in the report"
    assert sum(report["summary"].values()) == len(report["cases"])
    for case in report["cases"]:
        assert case["references"] and case["references"] != ["(none recorded)"], case["id"]
    ids = [case["id"] for case in report["cases"]]
    assert len(ids) == len(set(ids))


def _recorded_failures(report: dict) -> set:
    """The cases the committed reference of this report's family records as failing: defects of this platform,
    some of which show only in some runs (a collector that misses a graph only when it visits it in one order)."""
    candidates = reference.references_in(ROOT / "reports") + reference.references_in(ROOT / "reports" / "kernels")
    chosen = reference.choose(Report.from_json(report), candidates)
    return set() if chosen is None else {case.id for case in chosen[1].cases if case.outcome in FAILING}


def test_parallel_run_reports_what_a_serial_run_does(reports):
    serial, parallel = reports["serial"], reports["parallel"]
    assert parallel["run"]["workers"] == 2 and serial["run"]["workers"] == 0
    known = _recorded_failures(serial)

    def view(report):
        """Outcomes and observations by case; a recorded defect counts as failing whether or not this run showed it."""
        return {c["id"]: ("fail" if c["id"] in known and c["outcome"] == "pass" else c["outcome"], c["observations"])
                for c in report["cases"]}

    assert view(parallel) == view(serial)


@pytest.mark.parametrize("run", ["serial_run", "parallel_run"])
def test_the_conformance_cases_are_judged_by_the_reference_of_this_platform(run, request):
    """How the project's test command judges the conformance cases: by their report, against the committed reference
    of this platform family (OS, architecture, privilege, filesystem), whatever this kernel's build string. A `fail`
    the reference records with its evidence stays green; a new one, a regression, an incomplete report turn red. A
    family without a reference has nothing to vouch for a failing case: every one is red."""
    (path,) = request.getfixturevalue(run).report_dir.glob("*.json")
    fresh = read_report(path)
    candidates = reference.references_in(ROOT / "reports") + reference.references_in(ROOT / "reports" / "kernels")
    verdict = reference.judge(fresh, candidates)
    if verdict.diff is not None:
        assert verdict.clean, render_text(verdict.diff, verdict.source, "this run")
    else:
        assert verdict.clean, "\n".join(verdict.problems)
