"""pytest's JUnit XML (`--junitxml FILE`) with each conformance case's outcome as the report has it.

pytest's junitxml plugin writes what pytest saw of each phase: a harness error in the call is a <failure>, an
unexpected pass a pass, a case whose worker crashed a setup error, a case the run was interrupted in a testcase with
neither name nor result (a pass to every consumer), and the properties of the phase that closed the testcase, the
teardown's outcome among them. A case's final outcome exists only once the collector has built the report, in its
trylast pytest_sessionfinish, after pytest's plugin wrote the file in its own. So the file is rewritten then, from the
report, by a hook wrapper around pytest_sessionfinish: the code after its yield runs once every plugin's
pytest_sessionfinish has, and it is innermost among the wrappers, so that a problem can still be shown in pytest's
summary. pytest's own objects (LogXML, its node reporters) are private, forget each testcase's node id once it is
written and have changed between the pytest versions the suite supports; the file is public and is what every consumer
reads, and all this module takes from pytest besides it is how pytest names a test there (`junit_names`). Under
pytest-xdist both pytest's plugin and the collector run on the controller only, so one rewrite serves both ways.

A case's testcase keeps pytest's attributes (classname, name, time), its captured output and any property the case
recorded itself; its result and the suite's own properties are the report's:

    pass, unexpected-pass   no result element (as pytest writes a pass, and an xpass); with --conformance-strict an
                            unexpected pass is a <failure>, as pytest shows it then
    fail                    <failure message=reason>
    error                   <error message=reason>, counted in the suite's `errors`; a case that did not finish too
    unsupported             <skipped type="pytest.skip" message=reason>
    deviation               <skipped type="pytest.xfail" message=reason>, as pytest writes an expected failure

The element's text is what pytest wrote for the case's phases (the traceback, the crashed worker), else the reason.
The properties: conformance.case (the case id), conformance.outcome (the final outcome, once), conformance.reason,
conformance.reference (one per reference, the expectation's after the case's) and conformance.observation.<key> (one
per observation). pytest writes two testcases for a test whose call and teardown both failed: a case keeps the first.
A case with no testcase of its own (it did not finish) takes the place of one of pytest's nameless ones, which cannot
say whose they are, or is added. Tests that are not conformance cases keep pytest's testcases; the suite's counts
(tests, failures, errors, skipped) are then counted again from the testcases the file holds.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

import pytest

from ..model import (
    DEVIATION,
    ERROR,
    FAIL,
    PROPERTY_CASE,
    PROPERTY_COLLECTION,
    PROPERTY_OBSERVATION,
    PROPERTY_OUTCOME,
    PROPERTY_REASON,
    PROPERTY_REFERENCE,
    PROPERTY_REFERENCES,
    UNEXPECTED_PASS,
    UNSUPPORTED,
    CaseResult,
    Report,
)
from ..report.text import char_escape, visible
from ..report.vocabulary import value_text
from .collector import CASE_NODES, REPORT

# What pytest's own plugin wrote from the phases' user_properties: replaced by the final properties above.
PHASE_PROPERTIES = frozenset({PROPERTY_CASE, PROPERTY_OUTCOME, PROPERTY_REFERENCES, PROPERTY_OBSERVATION,
                              PROPERTY_COLLECTION})
RESULT_TAGS = ("failure", "error", "skipped")
# The suite's counts, each with the result element it counts.
COUNTED = {"failures": "failure", "errors": "error", "skipped": "skipped"}
MESSAGE_LIMIT = 500  # characters of a message attribute (pytest's own budget); the element's text has all of it
_NOT_XML = re.compile("[\ufffe\uffff]")  # the characters XML 1.0 excludes that report.text lets through


def junit_names(nodeid: str, prefix: str | None = None) -> tuple[str, str]:
    """(classname, name) of the testcase pytest writes for the test `nodeid`: the module's path dotted without its
    .py, then its classes, after --junitprefix; the function with its parameters."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    return ".".join(([prefix] if prefix else []) + names[:-1]), names[-1] + bracket + params


def _text(value) -> str:
    """Report text as XML can carry it: control and format characters as visible escapes, line breaks kept."""
    return _NOT_XML.sub(lambda match: char_escape(match.group()), visible(value, keep="\n\t"))


def _message(reason: str) -> str:
    text = _text(reason)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 1] + "…"


def _properties(case: CaseResult, kept: list[ET.Element]) -> ET.Element:
    properties = ET.Element("properties")
    properties.extend(kept)
    pairs = [(PROPERTY_CASE, case.id), (PROPERTY_OUTCOME, case.outcome)]
    if case.reason:
        pairs.append((PROPERTY_REASON, case.reason))
    pairs += [(PROPERTY_REFERENCE, reference) for reference in case.all_references()]
    pairs += [(f"{PROPERTY_OBSERVATION}.{key}", value_text(value)) for key, value in case.observations.items()]
    for name, value in pairs:
        ET.SubElement(properties, "property", name=_text(name), value=_text(value))
    return properties


def _result(case: CaseResult, details: str, strict: bool) -> ET.Element | None:
    """The result element of a case's final outcome; None for a pass."""
    if case.outcome == FAIL or (case.outcome == UNEXPECTED_PASS and strict):
        element = ET.Element("failure", message=_message(case.reason))
    elif case.outcome == ERROR:
        element = ET.Element("error", message=_message(case.reason))
    elif case.outcome == UNSUPPORTED:
        element = ET.Element("skipped", type="pytest.skip", message=_message(case.reason))
    elif case.outcome == DEVIATION:
        return ET.Element("skipped", type="pytest.xfail", message=_message(case.reason))
    else:
        return None
    element.text = details or _text(case.reason)
    return element


def _rewrite_testcase(testcases: list[ET.Element], case: CaseResult, strict: bool) -> None:
    """The first of the testcases pytest wrote for a case, made the report's; `testcases[1:]` are removed by the
    caller, what pytest wrote in them kept in the first one's text."""
    testcase = testcases[0]
    details = "\n\n".join(result.text for element in testcases for result in element
                          if result.tag in RESULT_TAGS and result.text)
    kept = [prop for prop in testcase.iterfind("properties/property") if prop.get("name") not in PHASE_PROPERTIES]
    others = [child for child in testcase if child.tag != "properties" and child.tag not in RESULT_TAGS]
    for child in list(testcase):
        testcase.remove(child)
    testcase.append(_properties(case, kept))
    result = _result(case, details, strict)
    if result is not None:
        testcase.append(result)
    testcase.extend(others)


def rewrite(path: str, report: Report, nodes: dict[str, str], prefix: str | None, strict: bool) -> None:
    """Rewrite pytest's JUnit XML file at `path` so that every case of `report` (`nodes`: pytest node id -> case id)
    has one testcase with its final outcome, and the suite's counts agree."""
    tree = ET.parse(path)
    suite = tree.getroot().find("testsuite")
    if suite is None:
        raise ValueError("it holds no <testsuite>")
    results = {case.id: case for case in report.cases}
    cases = {junit_names(nodeid, prefix): results[case_id] for nodeid, case_id in nodes.items()
             if case_id in results}
    written: dict[tuple[str, str], list[ET.Element]] = {}
    nameless = []  # pytest's trace of a test that reported nothing after its setup: whose, it does not say
    for testcase in suite.findall("testcase"):
        names = (testcase.get("classname", ""), testcase.get("name"))
        if names in cases:
            written.setdefault(names, []).append(testcase)
        elif testcase.get("name") is None and len(testcase) == 0:
            nameless.append(testcase)
    for names, case in cases.items():
        if names not in written:  # it never got a testcase of its own: it did not finish
            testcase = nameless.pop(0) if nameless else ET.SubElement(suite, "testcase")
            testcase.attrib.clear()
            testcase.attrib.update(classname=names[0], name=names[1], time=f"{float(case.duration):.3f}")
            written[names] = [testcase]
        _rewrite_testcase(written[names], case, strict)
        for duplicate in written[names][1:]:
            suite.remove(duplicate)
    testcases = suite.findall("testcase")
    suite.set("tests", str(len(testcases)))
    for count, tag in COUNTED.items():
        suite.set(count, str(sum(len(testcase.findall(tag)) for testcase in testcases)))
    partial = f"{path}.partial"
    tree.write(partial, encoding="utf-8", xml_declaration=True)
    os.replace(partial, path)


class JunitOutcomes:
    """On the controller (or the only process): pytest's --junitxml file, rewritten once the report exists."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        path = getattr(config.option, "xmlpath", None)  # absent when pytest's junitxml plugin is disabled
        # Resolved now, as pytest's plugin resolves it, before a test could change the working directory.
        self.path = os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(path)))) if path else None
        self.problem = ""

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session):
        yield
        report = self.config.stash.get(REPORT, None)
        if self.path is None or report is None:
            return  # no JUnit XML asked for, or no conformance case in this session
        try:
            rewrite(self.path, report, self.config.stash[CASE_NODES], self.config.option.junitprefix,
                    self.config.getoption("conformance_strict"))
        except (OSError, ET.ParseError, ValueError) as e:
            self.problem = f"{self.path}: {e}"

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.problem:
            terminalreporter.write_line(f"the JUnit XML is pytest's own, without the cases' outcomes: {self.problem}")
