"""`--junitxml` carries each conformance case's final outcome, as the report has it: crafted case modules run in
pytest processes of their own (serially, with two pytest-xdist workers, and with --conformance-strict), then the XML is
read with xml.etree and held against the report the same run wrote.

The case that does not finish interrupts its own run serially (SIGINT) and kills its own worker under pytest-xdist
(SIGKILL): either way the report calls it an `error`, and so must the XML.
"""

from __future__ import annotations

import json
import signal
import xml.etree.ElementTree as ET

import pytest

from conformance.plugin.junit import junit_names
from conformance.report.vocabulary import value_text

pytest_plugins = ["pytester"]

CASES = '''
import os
import signal

import pytest

from conformance.outcomes import HarnessError, Unsupported

CONFORMANCE_AREA = "junit"


@pytest.fixture
def breaks_in_teardown():
    yield
    raise HarnessError("the teardown broke on purpose")


@pytest.mark.refs("self-test: passes", "a second reference")
@pytest.mark.parametrize("kind", ["stream", "odd/id::with.parts"])
def test_passes(observe, kind):
    observe("kind", kind)
    observe("answer", 42)


@pytest.mark.refs("self-test: fails")
def test_fails(observe):
    observe("half.way", 0.5)
    assert 1 + 1 == 3, "arithmetic is broken on purpose"


@pytest.mark.refs("self-test: harness")
def test_harness_breaks():
    raise HarnessError("the harness broke \\x07 on purpose")


@pytest.mark.refs("self-test: teardown")
def test_passes_then_breaks_in_teardown(breaks_in_teardown):
    pass


@pytest.mark.refs("self-test: fails, then teardown")
def test_fails_then_breaks_in_teardown(breaks_in_teardown):
    assert False, "failing before the teardown breaks"


@pytest.mark.refs("self-test: unsupported")
def test_unsupported():
    raise Unsupported("no such thing here")


@pytest.mark.refs("self-test: deviates")
def test_deviates():
    assert False, "the platform deviates"


@pytest.mark.refs("self-test: stale")
def test_deviation_that_did_not_happen():
    pass


class TestGroup:
    @pytest.mark.refs("self-test: in a class")
    def test_in_a_class(self):
        pass


@pytest.mark.refs("self-test: unfinished")
def test_does_not_finish():
    # The last test of the run: serially the signal ends the session, under pytest-xdist its worker dies.
    os.kill(os.getpid(), signal.SIGKILL if os.environ.get("PYTEST_XDIST_WORKER") else signal.SIGINT)
'''

PLAIN = '''
import pytest


def test_plain_passes():
    pass


def test_plain_fails():
    assert 0, "plain failure"


def test_plain_skips():
    pytest.skip("plain skip")
'''

EXPECTATIONS = '''
[[deviation]]
case = "junit/test_deviates"
reason = "the crafted platform documents this"
references = ["self-test: documented"]

[[deviation]]
case = "junit/test_deviation_that_did_not_happen"
reason = "the crafted platform was expected to deviate here"
references = ["self-test: expected"]
'''

# Each case by its node id (in test_cases.py): its case id, its final outcome and the result element it must have,
# (tag, type), or None for a pass.
EXPECTED = {
    "test_passes[stream]": ("junit/test_passes[stream]", "pass", None),
    "test_passes[odd/id::with.parts]": ("junit/test_passes[odd/id::with.parts]", "pass", None),
    "test_fails": ("junit/test_fails", "fail", ("failure", None)),
    "test_harness_breaks": ("junit/test_harness_breaks", "error", ("error", None)),
    "test_passes_then_breaks_in_teardown": ("junit/test_passes_then_breaks_in_teardown", "error", ("error", None)),
    "test_fails_then_breaks_in_teardown": ("junit/test_fails_then_breaks_in_teardown", "error", ("error", None)),
    "test_unsupported": ("junit/test_unsupported", "unsupported", ("skipped", "pytest.skip")),
    "test_deviates": ("junit/test_deviates", "deviation", ("skipped", "pytest.xfail")),
    "test_deviation_that_did_not_happen": ("junit/test_deviation_that_did_not_happen", "unexpected-pass", None),
    "TestGroup::test_in_a_class": ("junit/test_in_a_class", "pass", None),
    "test_does_not_finish": ("junit/test_does_not_finish", "error", ("error", None)),
}
# pytest's own testcases for the tests that are not cases: (classname, name) -> (tag, message) or None for a pass.
PLAIN_EXPECTED = {
    ("test_plain", "test_plain_passes"): None,
    ("test_plain", "test_plain_fails"): ("failure", "AssertionError: plain failure\nassert 0"),
    ("test_plain", "test_plain_skips"): ("skipped", "plain skip"),
}
RESULT_TAGS = ("failure", "error", "skipped")


@pytest.fixture
def inner(pytester, monkeypatch):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_cases=CASES, test_plain=PLAIN)
    pytester.makefile(".toml", expectations=EXPECTATIONS)
    return pytester


def run(pytester, *args):
    """The run's exit status, its report, and its JUnit XML's one <testsuite>."""
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--conformance-expectations", "expectations.toml",
        "--conformance-report", "report", "--junitxml", "junit.xml", *args,
        "test_plain.py", "test_cases.py", timeout=120)
    paths = list((pytester.path / "report").glob("*.json"))
    assert len(paths) == 1, result.outlines + result.errlines
    root = ET.parse(pytester.path / "junit.xml").getroot()
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1, ET.tostring(root)
    return result, json.loads(paths[0].read_text()), suites[0]


def properties(testcase) -> list[tuple[str, str]]:
    return [(prop.get("name"), prop.get("value")) for prop in testcase.iterfind("properties/property")]


def results(testcase) -> list:
    return [child for child in testcase if child.tag in RESULT_TAGS]


def check_case(testcase, case: dict, expected: tuple, strict: bool) -> None:
    _, outcome, element = expected
    assert case["outcome"] == outcome, case
    if strict and outcome == "unexpected-pass":
        element = ("failure", None)  # as pytest itself shows it under --conformance-strict
    found = results(testcase)
    if element is None:
        assert found == [], ET.tostring(testcase)
    else:
        assert [(child.tag, child.get("type")) for child in found] == [element], ET.tostring(testcase)
        assert found[0].get("message") == case["reason"].replace("\x07", "\\x07")
        if element[0] != "skipped" or element[1] == "pytest.skip":
            assert found[0].text, ET.tostring(testcase)  # pytest's traceback, the crashed worker, or the reason

    props = properties(testcase)
    names = [name for name, _ in props]
    assert names.count("conformance.outcome") == 1 and ("conformance.outcome", outcome) in props, props
    assert names.count("conformance.case") == 1 and ("conformance.case", case["id"]) in props, props
    reasons = [value for name, value in props if name == "conformance.reason"]
    assert reasons == ([case["reason"].replace("\x07", "\\x07")] if case["reason"] else []), props
    expectation = case["expectation"]["references"] if case["expectation"] else []
    assert [value for name, value in props if name == "conformance.reference"] == case["references"] + expectation
    prefix = "conformance.observation."
    observed = {name[len(prefix):]: value for name, value in props if name.startswith(prefix)}
    assert observed == {key: value_text(value) for key, value in case["observations"].items()}, props
    assert set(names) <= {"conformance.outcome", "conformance.case", "conformance.reason", "conformance.reference"} \
        | {prefix + key for key in case["observations"]}, props


@pytest.mark.parametrize("args", [[], ["-n", "2"], ["--conformance-strict", "--junitprefix", "pre"]],
                         ids=["serial", "xdist", "strict"])
def test_each_case_carries_its_final_outcome_reason_references_and_observations(inner, args):
    result, report, suite = run(inner, *args)
    strict = "--conformance-strict" in args
    prefix = "pre" if "--junitprefix" in args else None
    xdist = "-n" in args
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if xdist else 128 + signal.SIGINT), result.outlines
    cases = {case["id"]: case for case in report["cases"]}
    assert sorted(cases) == sorted(case_id for case_id, _, _ in EXPECTED.values())
    unfinished = cases["junit/test_does_not_finish"]["reason"]
    why = "worker 'gw" if xdist else "the run was interrupted by SIGINT"
    assert unfinished.startswith(f"did not finish: {why}"), unfinished

    testcases = suite.findall("testcase")
    by_names: dict = {}
    for testcase in testcases:
        by_names.setdefault((testcase.get("classname"), testcase.get("name")), []).append(testcase)
    assert all(len(found) == 1 for found in by_names.values()), [ET.tostring(t) for t in testcases]
    for node, expected in EXPECTED.items():
        names = junit_names(f"test_cases.py::{node}", prefix)
        assert names in by_names, (names, sorted(by_names))
        check_case(by_names[names][0], cases[expected[0]], expected, strict)

    # The plain tests come first on the command line: the signal that ends a serial run comes after them.
    for (classname, name), expected in PLAIN_EXPECTED.items():
        testcase = by_names[(f"{prefix}.{classname}" if prefix else classname, name)][0]
        assert properties(testcase) == []
        assert [(child.tag, child.get("message")) for child in results(testcase)] == ([expected] if expected else [])

    summary = report["summary"]
    assert len(testcases) == len(cases) + len(PLAIN_EXPECTED)
    assert suite.get("tests") == str(len(testcases))
    assert suite.get("failures") == str(summary["fail"] + (summary["unexpected-pass"] if strict else 0) + 1)
    assert suite.get("errors") == str(summary["error"])
    assert suite.get("skipped") == str(summary["unsupported"] + summary["deviation"] + 1)
    assert (summary["error"], summary["fail"]) == (4, 1)


def test_the_names_of_a_testcase_are_pytests_own(pytester):
    """The names this module computes for a node id are those pytest writes, on the same crafted module."""
    pytester.makepyfile(test_names=CASES.replace('CONFORMANCE_AREA = "junit"', "").replace(
        "os.kill(os.getpid(), signal.SIGKILL if os.environ.get(\"PYTEST_XDIST_WORKER\") else signal.SIGINT)", "pass"))
    pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--junitxml", "names.xml",
                                  "--junitprefix", "pre", "-p", "no:conformance.plugin", timeout=60)
    written = [(testcase.get("classname"), testcase.get("name"))
               for testcase in ET.parse(pytester.path / "names.xml").getroot().iter("testcase")]
    # pytest writes a second testcase for a test whose call failed and whose teardown broke too.
    assert list(dict.fromkeys(written)) == [junit_names(f"test_names.py::{node}", "pre") for node in EXPECTED]
