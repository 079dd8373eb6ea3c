"""The committed reference reports in reports/: each is whole and valid, and a root and an unprivileged
reference of one machine differ only where privilege should matter."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.report.diff import diff_reports
from conformance.report.load import read_report
from conformance.report.markdown import render_markdown

REPORTS = Path(__file__).resolve().parents[1] / "reports"
REFERENCES = sorted(REPORTS.glob("*.json"))


def test_there_are_reference_reports():
    assert REFERENCES, f"no reference report in {REPORTS}"


@pytest.mark.parametrize("path", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_a_reference_is_named_for_its_platform_and_its_page_is_current(path):
    report = read_report(path)
    assert path.stem == report["platform"]["id"]
    assert report["suite"]["commit"], "a reference must say which commit of the suite made it"
    assert report["run"]["exit_status"] == 0
    page = path.with_suffix(".md")
    assert page.read_text(encoding="utf-8") == render_markdown(report), f"{page} is stale: conformance render"


PAIRS = [(root, root.with_name(root.name.replace("-root-", "-user-"))) for root in REFERENCES if "-root-" in root.name]
PAIRS = [(root, user) for root, user in PAIRS if user.exists()]


@pytest.mark.parametrize(("root", "user"), PAIRS, ids=[r.stem for r, _ in PAIRS])
def test_root_and_unprivileged_differ_only_where_privilege_matters(root, user):
    diff = diff_reports(read_report(root), read_report(user))
    assert diff.exit_status == 0
    assert diff.cases, "no case needs root?"
    for change in diff.cases:
        assert (change.kind, change.old, change.new) == ("changed", "pass", "unsupported"), change
        assert "root" in change.reason, change
    assert {change.kind for change in diff.observations} <= {"vanished"}
