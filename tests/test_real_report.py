"""The report of a real run: it validates, a parallel run reports what a serial run does, and nothing
regressed against this platform's reference report. The runs are conftest.py's, shared with test_leftovers.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.report import reference
from conformance.report.diff import diff_reports
from conformance.report.diff_render import render_text
from conformance.report.load import read_report
from conformance.report.schema import load_schema, validate

ROOT = Path(__file__).resolve().parents[1]

# Both runs may happen in the setup of one test here: conftest.WALL bounds each, the margin is for a loaded machine.
pytestmark = pytest.mark.timeout(440)


def _report(run) -> dict:
    assert run.status == 0, run.output[-6000:]
    (path,) = run.report_dir.glob("*.json")
    assert not path.name.endswith(".partial.json"), f"the whole suite made an incomplete report: {path}"
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


def test_parallel_run_reports_what_a_serial_run_does(reports):
    serial, parallel = reports["serial"], reports["parallel"]
    assert parallel["run"]["workers"] == 2 and serial["run"]["workers"] == 0

    def view(report):
        return {c["id"]: (c["outcome"], c["observations"]) for c in report["cases"]}

    assert view(parallel) == view(serial)


def test_no_regression_against_the_reference_of_this_platform(serial_run):
    """The README's regression check, on every run here: a fresh report against the committed reference of its
    platform family (OS, architecture, privilege, filesystem), whatever this kernel's build string."""
    (path,) = serial_run.report_dir.glob("*.json")
    fresh = read_report(path)
    candidates = reference.references_in(ROOT / "reports") + reference.references_in(ROOT / "reports" / "kernels")
    chosen = reference.choose(fresh, candidates)
    if chosen is None:
        pytest.skip(f"no reference of the family {reference.family_text(fresh)} in reports/")
    source, old = chosen
    diff = diff_reports(old, fresh)
    assert diff.regressions() == [], render_text(diff, source, "this run")
