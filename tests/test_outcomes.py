"""The outcome mapping end to end: inner case modules run in a pytest process of their own, then the report.

Inner modules become conformance cases by declaring CONFORMANCE_AREA; the deviations come from a crafted file
given with --conformance-expectations.
"""

from __future__ import annotations

import json
import re

import pytest

from conformance.report.schema import validate

pytest_plugins = ["pytester"]

BENIGN = '''
import pytest

from conformance.outcomes import Unsupported

CONFORMANCE_AREA = "fake"
REF = "self-test reference"


@pytest.mark.refs(REF, "a second reference")
@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_passes(observe, kind):
    observe("seen.kind", kind)
    observe("answer", 42)


@pytest.mark.refs(REF)
def test_unsupported():
    raise Unsupported("no such thing")


@pytest.mark.refs(REF)
def test_documented_deviation(observe):
    observe("deviation.seen", True)
    assert 1 + 1 == 3, "the platform deviates"


@pytest.mark.refs(REF)
def test_deviation_that_did_not_happen():
    pass
'''

BROKEN = '''
import faulthandler
import os
import resource
import signal

import pytest

from conformance.harness.children import run_in_child
from conformance.outcomes import HarnessError

CONFORMANCE_AREA = "broken"
REF = "self-test reference"


def crash():
    faulthandler.disable()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), signal.SIGSEGV)


@pytest.mark.refs(REF)
def test_fails(observe):
    observe("half.way", 0.5)
    assert 1 + 1 == 3, "arithmetic is broken on purpose"


@pytest.mark.refs(REF)
def test_harness_breaks():
    raise HarnessError("the harness broke on purpose")


@pytest.mark.refs(REF)
def test_child_crashes():
    run_in_child(crash, timeout=5)
'''

PLAIN = '''
def test_not_a_case():
    pass
'''

EXPECTATIONS = '''# crafted for the self-test
[[deviation]]
case = "fake/test_documented_*"
reason = "the fake platform documents this deviation"
references = ["self-test: documented"]

[[deviation]]
case = "fake/test_deviation_that_did_not_happen"
reason = "the fake platform was expected to deviate here"
references = ["self-test: stale"]
'''

DOCUMENTED = {"outcome": "deviation", "reason": "the fake platform documents this deviation",
              "references": ["self-test: documented"]}
STALE = {"outcome": "deviation", "reason": "the fake platform was expected to deviate here",
         "references": ["self-test: stale"]}


@pytest.fixture
def inner(pytester, monkeypatch):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_benign=BENIGN, test_broken=BROKEN, test_plain=PLAIN)
    pytester.makefile(".toml", expectations=EXPECTATIONS)
    return pytester


def run(pytester, *args, report="report"):
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--conformance-expectations", "expectations.toml",
        "--conformance-report", report, *args, timeout=60)
    paths = list((pytester.path / report).glob("*.json"))
    assert len(paths) == 1, result.outlines + result.errlines
    return result, json.loads(paths[0].read_text())


def by_id(report) -> dict:
    return {case["id"]: case for case in report["cases"]}


def test_report_records_every_outcome_with_reasons_and_observations(inner):
    result, report = run(inner)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert validate(report) == []
    assert report["run"]["exit_status"] == result.ret and report["run"]["workers"] == 0
    cases = by_id(report)
    assert sorted(cases) == [
        "broken/test_child_crashes", "broken/test_fails", "broken/test_harness_breaks",
        "fake/test_deviation_that_did_not_happen", "fake/test_documented_deviation",
        "fake/test_passes[dgram]", "fake/test_passes[stream]", "fake/test_unsupported",
    ]  # test_plain.py declares no area: not a case
    outcomes = {cid: case["outcome"] for cid, case in cases.items()}
    assert outcomes == {
        "broken/test_child_crashes": "error",
        "broken/test_fails": "fail",
        "broken/test_harness_breaks": "error",
        "fake/test_deviation_that_did_not_happen": "unexpected-pass",
        "fake/test_documented_deviation": "deviation",
        "fake/test_passes[dgram]": "pass",
        "fake/test_passes[stream]": "pass",
        "fake/test_unsupported": "unsupported",
    }
    assert report["summary"] == {"pass": 2, "fail": 1, "deviation": 1, "unexpected-pass": 1, "unsupported": 1,
                                 "error": 2}

    assert cases["fake/test_passes[stream]"]["reason"] == ""
    assert cases["broken/test_fails"]["reason"].startswith("arithmetic is broken on purpose")
    assert cases["broken/test_harness_breaks"]["reason"] == "the harness broke on purpose"
    assert re.fullmatch(r"child \d+ killed by SIGSEGV before reporting", cases["broken/test_child_crashes"]["reason"])
    assert cases["fake/test_unsupported"]["reason"] == "no such thing"
    assert cases["fake/test_documented_deviation"]["reason"].startswith(
        "the fake platform documents this deviation (observed: the platform deviates")
    assert cases["fake/test_deviation_that_did_not_happen"]["reason"] == (
        "documented deviation did not happen: the fake platform was expected to deviate here")

    assert cases["fake/test_documented_deviation"]["expectation"] == DOCUMENTED
    assert cases["fake/test_deviation_that_did_not_happen"]["expectation"] == STALE
    assert cases["broken/test_fails"]["expectation"] is None

    assert cases["fake/test_passes[stream]"]["params"] == "stream"
    assert cases["fake/test_passes[stream]"]["area"] == "fake"
    assert cases["fake/test_passes[stream]"]["references"] == ["self-test reference", "a second reference"]
    observations = {cid: case["observations"] for cid, case in cases.items() if case["observations"]}
    assert observations == {
        "fake/test_passes[stream]": {"fake.seen.kind[stream]": "stream", "fake.answer[stream]": 42},
        "fake/test_passes[dgram]": {"fake.seen.kind[dgram]": "dgram", "fake.answer[dgram]": 42},
        "fake/test_documented_deviation": {"fake.deviation.seen": True},
        "broken/test_fails": {"broken.half.way": 0.5},
    }


def test_parallel_run_gives_the_same_outcomes_as_serial(inner):
    _, serial = run(inner, report="serial")
    result, parallel = run(inner, "-n", "2", report="parallel")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert validate(parallel) == []
    assert parallel["run"]["workers"] == 2

    def view(report):
        # pids differ between runs; everything else must not
        return {case["id"]: (case["outcome"], re.sub(r"\d+", "N", case["reason"]), case["observations"],
                             case["references"], case["expectation"]) for case in report["cases"]}

    assert len(view(serial)) == 8
    assert view(parallel) == view(serial)
    assert parallel["summary"] == serial["summary"]


def test_exit_status_of_a_run_without_fail_or_error(inner):
    result, report = run(inner, "test_benign.py")
    assert result.ret == pytest.ExitCode.OK, result.outlines
    assert report["summary"] == {"pass": 2, "fail": 0, "deviation": 1, "unexpected-pass": 1, "unsupported": 1,
                                 "error": 0}
    result.assert_outcomes(passed=2, skipped=1, xfailed=1, xpassed=1)

    result, report = run(inner, "test_benign.py", "--conformance-strict", report="strict")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, skipped=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*[[]unexpected-pass[]] documented deviation did not happen*(expectations.toml:7)*"])
    assert by_id(report)["fake/test_deviation_that_did_not_happen"]["outcome"] == "unexpected-pass"


def test_case_without_references_is_a_usage_error(inner):
    inner.makepyfile(test_norefs='CONFORMANCE_AREA = "fake"\n\n\ndef test_forgot_its_references():\n    pass\n')
    result = inner.runpytest_subprocess("-p", "no:randomly", "test_norefs.py", "test_benign.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: conformance cases without @pytest.mark.refs(...): test_norefs.py::test_forgot_its_references"])
    assert "Traceback" not in "\n".join(result.errlines)


def test_badly_named_area_is_a_usage_error(inner):
    inner.makepyfile(test_badarea='import pytest\n\nCONFORMANCE_AREA = "Bad Area"\n\n\n'
                                  '@pytest.mark.refs("r")\ndef test_x():\n    pass\n')
    result = inner.runpytest_subprocess("-p", "no:randomly", "test_badarea.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: conformance areas must be lower_case words: 'Bad Area'"])


# ---- expectation entries that match no case, and expected values ---------------------------------------------------

STALE_ENTRIES = EXPECTATIONS + '''
[[deviation]]
case = "fake/test_renamed_long_ago"
reason = "documents a case the suite no longer has"
references = ["self-test: rotten"]

[[deviation]]
case = "elsewhere/test_in_an_area_not_collected"
reason = "an area this run did not collect says nothing"
references = ["self-test: elsewhere"]
'''


def test_an_entry_that_matches_no_collected_case_is_listed_and_fails_a_strict_run(inner):
    inner.makefile(".toml", expectations=STALE_ENTRIES)
    for workers in ((), ("-n", "2")):
        result, report = run(inner, "test_benign.py", *workers, report=f"report{len(workers)}")
        assert result.ret == pytest.ExitCode.OK, result.outlines  # only --conformance-strict fails for it
        assert report["expectations"]["unmatched"] == [{
            "case": "fake/test_renamed_long_ago", "reason": "documents a case the suite no longer has",
            "source": "expectations.toml:12"}]
        result.stdout.fnmatch_lines(["expectation entry matching no case: expectations.toml:12: fake/test_renamed*"])
    result, report = run(inner, "test_benign.py", "--conformance-strict", "-k", "passes", report="strict")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # -k deselects after the entries were judged
    assert [entry["case"] for entry in report["expectations"]["unmatched"]] == ["fake/test_renamed_long_ago"]
    result, report = run(inner, "test_benign.py::test_unsupported", "--conformance-strict", report="named")
    assert result.ret == pytest.ExitCode.OK and report["expectations"]["unmatched"] == []  # a single test: no verdict


EXPECTED_VALUES = '''
import pytest

CONFORMANCE_AREA = "fake"


@pytest.mark.refs("self-test")
@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_chooses(observe, expected, kind):
    observe("choice", "EPERM")
    assert expected("choice") == "EPERM"


@pytest.mark.refs("self-test")
def test_undocumented(expected):
    expected("nobody_wrote_this_down")
'''


def test_expected_values_come_from_the_file_and_their_absence_is_unsupported(inner):
    inner.makepyfile(test_expected=EXPECTED_VALUES)
    inner.makefile(".toml", expectations=EXPECTATIONS + '''
[[expected]]
observation = "fake.choice[stream]"
value = "EPERM"
reason = "the fake platform refuses with EPERM on a stream"
references = ["self-test: chosen"]

[[expected]]
observation = "fake.choice"
value = "EACCES"
reason = "and with EACCES elsewhere"
references = ["self-test: chosen too"]
''')
    result, report = run(inner, "test_expected.py")
    cases = by_id(report)
    assert cases["fake/test_chooses[stream]"]["outcome"] == "pass"
    assert cases["fake/test_chooses[dgram]"]["outcome"] == "fail"  # the general entry says EACCES
    assert cases["fake/test_undocumented"]["outcome"] == "unsupported"
    assert cases["fake/test_undocumented"]["reason"] == (
        "the expectation file documents no value of fake.nobody_wrote_this_down for this platform")
