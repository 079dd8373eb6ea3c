"""How the project's test command judges the conformance cases (conformance.report.reference.judge), on crafted
reports: a `fail` that the family's reference records stays green, a new one turns red, and without a reference every
failing case is red."""

from __future__ import annotations

from reportdata import model, sample_report

from conformance.report.reference import judge

REFERENCE = "reports/linux-reference.json"


def _passing(report):
    for case in report["cases"]:
        if case["outcome"] in ("fail", "error"):
            case["outcome"], case["reason"] = "pass", ""
    report["run"]["exit_status"] = 0
    return report


def _with_case(report, outcome, name="test_new_case"):
    report["cases"].append(dict(report["cases"][0], id=f"rights/{name}", name=name, params="", outcome=outcome,
                                observations={}, reason="assert 1 == 2" if outcome == "fail" else ""))
    return report


def _other_family(report):
    report["platform"]["arch"] = "aarch64"
    return report


def test_a_failure_the_reference_records_stays_green():
    verdict = judge(model(sample_report()), [(REFERENCE, model(sample_report()))])
    assert verdict.source == REFERENCE and verdict.clean, verdict.problems


def test_a_new_failure_a_regression_and_an_incomplete_run_turn_red():
    new_failing = _with_case(sample_report(), "fail")
    assert judge(model(new_failing), [(REFERENCE, model(sample_report()))]).problems == ["rights/test_new_case"]

    regressed = sample_report()
    regressed["cases"][0]["outcome"] = "fail"
    assert judge(model(regressed), [(REFERENCE, model(sample_report()))]).problems == [regressed["cases"][0]["id"]]

    interrupted = sample_report()
    interrupted["completeness"].update(complete=False, ended="interrupted", why="SIGINT")
    problems = judge(model(interrupted), [(REFERENCE, model(sample_report()))]).problems
    assert len(problems) == 1 and "interrupted" in problems[0]


def test_a_reference_of_another_family_vouches_for_nothing():
    verdict = judge(model(sample_report()), [(REFERENCE, model(_other_family(sample_report())))])
    assert verdict.source is None and verdict.diff is None
    assert [problem.split(":")[0] for problem in verdict.problems] == [
        "rights/test_truncation[dgram]", "gc/test_cycle_collected[seqpacket]"]
    assert "no reference of the family linux x86_64" in verdict.problems[0]


def test_without_a_reference_a_run_with_no_failing_case_is_green():
    assert judge(model(_passing(sample_report())), []).clean
    assert not judge(model(_with_case(_passing(sample_report()), "error")), []).clean
