"""Self-tests for the regression diff: how each change is classed, what fails the check, and its outputs."""

from __future__ import annotations

import json

import pytest
from reportdata import markdown_tables, model, sample_report

from conformance.report.diff import diff_reports
from conformance.report.diff_render import render_json, render_markdown, render_text

CASE = "rights/test_per_message_maximum[stream]"

# Old outcome -> new outcome -> the kind of change. Written out rather than derived, so the rule is checked.
KINDS = {
    "pass": {"fail": "regression", "error": "regression", "deviation": "changed", "unexpected-pass": "unexpected-pass",
             "unsupported": "changed"},
    "deviation": {"fail": "regression", "error": "regression", "pass": "changed",
                  "unexpected-pass": "unexpected-pass", "unsupported": "changed"},
    "unexpected-pass": {"fail": "regression", "error": "regression", "pass": "changed", "deviation": "changed",
                        "unsupported": "changed"},
    "unsupported": {"fail": "regression", "error": "regression", "pass": "changed", "deviation": "changed",
                    "unexpected-pass": "unexpected-pass"},
    "fail": {"error": "changed", "pass": "fixed", "deviation": "fixed", "unexpected-pass": "unexpected-pass",
             "unsupported": "fixed"},
    "error": {"fail": "changed", "pass": "fixed", "deviation": "fixed", "unexpected-pass": "unexpected-pass",
              "unsupported": "fixed"},
}
PAIRS = [(old, new, kind) for old, row in KINDS.items() for new, kind in row.items()]


def _pair(old_outcome, new_outcome):
    old, new = sample_report(), sample_report()
    old["cases"][0]["outcome"] = old_outcome
    new["cases"][0]["outcome"] = new_outcome
    new["cases"][0]["reason"] = "why it changed"
    return old, new


@pytest.mark.parametrize(("old", "new", "kind"), PAIRS, ids=[f"{o}-to-{n}" for o, n, _ in PAIRS])
def test_every_outcome_change_is_classed(old, new, kind):
    diff = diff_reports(*map(model, _pair(old, new)))
    (change,) = diff.cases
    assert (change.id, change.old, change.new, change.kind) == (CASE, old, new, kind)
    assert diff.exit_status == (1 if kind == "regression" else 0)


def test_identical_reports_have_no_differences():
    diff = diff_reports(model(sample_report()), model(sample_report()))
    assert diff.empty() and diff.exit_status == 0
    assert render_text(diff, "a", "b").endswith("result: no differences\n")


def _with_new_cases(report, *outcomes):
    template = report["cases"][0]
    for index, outcome in enumerate(outcomes):
        name = f"test_new_case_{index}"
        report["cases"].append(dict(template, id=f"rights/{name}", name=name, params="", outcome=outcome,
                                    observations={}))
    return report


def test_a_new_case_that_fails_or_errors_and_a_vanished_case_are_regressions():
    old, new = sample_report(), _with_new_cases(sample_report(), "fail", "error", "pass", "unsupported")
    del new["cases"][1]
    diff = diff_reports(model(old), model(new))
    assert [(c.kind, c.id, c.old, c.new) for c in diff.cases] == [
        ("new-failing", "rights/test_new_case_0", None, "fail"),
        ("new-failing", "rights/test_new_case_1", None, "error"),
        ("vanished", "rights/test_truncation[dgram]", "fail", None),
        ("new", "rights/test_new_case_2", None, "pass"),
        ("new", "rights/test_new_case_3", None, "unsupported"),
    ]
    assert diff.exit_status == 1 and diff.counted() == {"new-failing": 2, "vanished": 1}
    assert render_text(diff, "a", "b").endswith("result: 2 new failing cases, 1 vanished case\n")
    assert diff_reports(model(old), model(_with_new_cases(sample_report(), "pass"))).exit_status == 0


def _incomplete(report, **fields):
    report["completeness"].update(fields)
    report["completeness"]["complete"] = False
    return report


def test_an_incomplete_new_report_is_a_regression_of_its_own():
    old = sample_report()
    interrupted = _incomplete(sample_report(), ended="interrupted", why="SIGINT", finished=5,
                              unfinished=["gc/test_cycle_collected[seqpacket]"])
    diff = diff_reports(model(old), model(interrupted))
    assert diff.cases == [] and diff.exit_status == 1
    assert diff.run == ["the new report is incomplete: interrupted by SIGINT, 5 of the 6 cases it selected ran to "
                        "their end, 1 started and did not finish"]
    text = render_text(diff, "a", "b")
    assert "the new run (1):\n  the new report is incomplete: interrupted by SIGINT" in text
    assert text.endswith("result: 1 problem of the new run\n")
    # A selection of the suite is incomplete too, unless it was made on purpose; an interrupt never is.
    selected = _incomplete(sample_report(), selection=["-k rights"])
    assert diff_reports(model(old), model(selected)).exit_status == 1
    assert diff_reports(model(old), model(selected), allow_selection=True).exit_status == 0
    assert diff_reports(model(old), model(interrupted), allow_selection=True).exit_status == 1


def test_a_selection_made_on_purpose_leaves_the_cases_it_did_not_select_uncompared():
    old = sample_report()
    new = _incomplete(sample_report(), selection=["-k rights"], collected=3, finished=3)
    new["cases"] = [case for case in new["cases"] if case["area"] == "rights"]
    new["summary"] = {outcome: sum(1 for c in new["cases"] if c["outcome"] == outcome) for outcome in new["summary"]}
    diff = diff_reports(model(old), model(new), allow_selection=True)
    assert {c.kind for c in diff.cases} == {"not-selected"} and diff.exit_status == 0
    assert "cases the new report did not select (not compared: --allow-selection): 3" in render_text(diff, "a", "b")
    assert diff_reports(model(old), model(new)).counted() == {"vanished": 3, "run": 1}


def test_a_run_that_exited_with_a_status_no_failing_case_explains_is_a_regression():
    new = sample_report()
    new["run"]["exit_status"] = 3  # pytest's internal error
    diff = diff_reports(model(sample_report()), model(new))
    assert diff.run == ["the new run exited with status 3"] and diff.exit_status == 1


def test_observation_changes_fail_the_check_only_when_asked():
    old, new = sample_report(), sample_report()
    new["cases"][0]["observations"]["rights.max_fds_per_message[stream]"] = 252
    del new["cases"][1]["observations"]["rights.truncated_flag[dgram]"]
    new["cases"][1]["observations"]["rights.new_key"] = "x"
    new["cases"][2]["observations"]["perf.lock_pairs_per_second"] = 1000.0
    old["cases"][2]["observations"]["perf.lock_pairs_per_second"] = 900.0
    diff = diff_reports(model(old), model(new))
    assert [(c.kind, c.key) for c in diff.observations] == [
        ("changed", "rights.max_fds_per_message[stream]"),
        ("new", "rights.new_key"),
        ("vanished", "rights.truncated_flag[dgram]"),
        ("measurement", "perf.lock_pairs_per_second"),
    ]
    assert diff.exit_status == 0
    strict = diff_reports(model(old), model(new), observations_regress=True)
    assert strict.regressions() == ["rights.max_fds_per_message[stream]", "rights.truncated_flag[dgram]"]
    assert strict.exit_status == 1


def test_a_value_of_another_json_type_is_a_change():
    old, new = sample_report(), sample_report()
    new["cases"][-1]["observations"]["gc.cycles"] = 3.0
    new["cases"][3]["observations"]["locks.ofd_supported"] = 0
    assert [c.key for c in diff_reports(model(old), model(new)).observations] == ["gc.cycles", "locks.ofd_supported"]


def test_platform_and_capability_changes_are_shown():
    old, new = sample_report(), sample_report()
    new["platform"]["release"] = "6.12.48"
    new["platform"]["capabilities"]["scm_creds"]["supported"] = True
    del new["platform"]["capabilities"]["scm_rights"]
    new["platform"]["capabilities"]["pidfd_getfd"] = {"supported": True, "reason": "5.6+"}
    diff = diff_reports(model(old), model(new))
    assert ("release", "6.18.44-fc-v669", "6.12.48") in diff.platform
    assert diff.capabilities == [("pidfd_getfd", "not probed", "supported"), ("scm_creds", "unsupported", "supported"),
                                 ("scm_rights", "supported", "not probed")]
    assert diff.exit_status == 0


def test_text_output_names_each_change_and_the_verdict():
    diff = diff_reports(*map(model, _pair("pass", "fail")))
    text = render_text(diff, "old.json", "new.json")
    assert ("regressions (a case now fails or errors) (1):\n  rights/test_per_message_maximum[stream]: pass -> fail\n"
            "      why it changed\n") in text
    assert text.endswith("result: 1 case regression\n")


def test_text_output_cannot_be_steered_by_report_text():
    old, new = _pair("pass", "fail")
    new["cases"][0]["reason"] = "line\nresult: no regressions\x1b[2J\u202e"
    text = render_text(diff_reports(model(old), model(new)), "a", "b")
    assert "\x1b" not in text and "\u202e" not in text
    assert [line for line in text.splitlines() if line.startswith("result:")] == ["result: 1 case regression"]
    assert "line\\nresult: no regressions\\x1b[2J\\u202e" in text


def test_markdown_output_is_tables_of_escaped_text():
    old, new = _pair("pass", "fail")
    new["cases"][0]["reason"] = "<script>x</script> | y"
    page = render_markdown(diff_reports(model(old), model(new)), "old.json", "new.json")
    assert "- result: **1 case regression**" in page
    assert "<script" not in page
    (table,) = markdown_tables(page)
    assert table[2] == ["rights/test\\_per\\_message\\_maximum\\[stream\\]", "pass", "fail",
                        "&lt;script&gt;x&lt;/script&gt; \\| y"]


def test_json_output_carries_everything():
    old, new = _pair("deviation", "unexpected-pass")
    new["cases"][0]["observations"]["rights.max_fds_per_message[stream]"] = "\ud800"
    document = json.loads(render_json(diff_reports(model(old), model(new)), "old.json", "new.json"))
    assert document["diff_format_version"] == 1 and document["exit_status"] == 0 and document["regressions"] == []
    assert document["cases"] == [{"id": CASE, "kind": "unexpected-pass", "old": "deviation", "new": "unexpected-pass",
                                  "reason": "why it changed"}]
    assert document["observations"] == [{"key": "rights.max_fds_per_message[stream]", "kind": "changed", "old": 253,
                                         "new": "\ud800"}]


def _abi_pair(new_arch: str):
    """Two Linux reports whose truncation case shows what CMSG_SPACE(sizeof(int)) holds: LP64's answer, then ILP32's
    under new_arch."""
    old, new = sample_report(), sample_report()
    key = "format.truncation.delivered[stream-recvmsg-three_fds_in_space1]"
    old["cases"][0]["observations"][key] = 2
    new["cases"][0]["observations"][key] = 1
    new["cases"][0]["observations"]["rights.max_fds_per_message[stream]"] = 252  # no [[abi]] entry names it
    new["platform"]["arch"] = new_arch
    return old, new


def test_an_observation_the_data_model_explains_is_classed_with_its_reason_across_architectures():
    old, new = _abi_pair("i686 on x86_64")
    diff = diff_reports(model(old), model(new), observations_regress=True)
    kinds = {change.key: change.kind for change in diff.observations}
    assert kinds == {"format.truncation.delivered[stream-recvmsg-three_fds_in_space1]": "abi",
                     "rights.max_fds_per_message[stream]": "changed"}
    explained = next(change for change in diff.observations if change.kind == "abi")
    assert "CMSG_SPACE(sizeof(int))" in explained.explanation and "include/linux/socket.h" in explained.explanation
    assert diff.regressions() == ["rights.max_fds_per_message[stream]"]  # the explained one never regresses
    assert "      CMSG_SPACE(sizeof(int)) is 24 bytes" in render_text(diff, "old.json", "new.json")
    entries = json.loads(render_json(diff, "o", "n"))["observations"]
    assert [entry.get("explanation") for entry in entries] == [None, explained.explanation]
    assert "| Observation | Old | New | Why |" in render_markdown(diff, "o", "n")


def test_the_same_change_on_one_architecture_is_not_explained():
    old, new = _abi_pair("x86_64")
    kinds = [change.kind for change in diff_reports(model(old), model(new)).observations]
    assert kinds == ["changed", "changed"]


def test_format_md_documents_the_diff_documents_keys_and_every_kind():
    """The document a program reads is the one FORMAT.md describes: its keys, and each kind of change by name."""
    import re
    from pathlib import Path

    from conformance.report.diff import CASE_KINDS, OBSERVATION_KINDS, REGRESSION_KINDS

    text = (Path(__file__).resolve().parents[1] / "conformance" / "report" / "FORMAT.md").read_text()
    section = text[text.index("## The diff document"):]
    example = section[section.index("```jsonc"):section.index("```", section.index("```jsonc") + 3)]
    documented = set(re.findall(r'^  "(\w+)":', example, re.M))
    old, new = _pair("pass", "fail")
    assert documented == set(json.loads(render_json(diff_reports(model(old), model(new)), "o", "n")))
    named = set(re.findall(r"`([a-z-]+)`", section))
    missing = (set(CASE_KINDS) | set(OBSERVATION_KINDS) | set(REGRESSION_KINDS) | {"observation", "run"}) - named
    assert not missing, f"FORMAT.md does not name {sorted(missing)}"
