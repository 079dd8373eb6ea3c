"""Self-tests for KTAP streamed as the cases finish (--conformance-ktap, `conformance run --ktap`): real runs of crafted
case modules, serial and through pytest-xdist, complete, interrupted by a signal and killed outright; each stream read
back with the strict parser of test_ktap.py and with the kernel's own (kunit_parser.py, kept in tests/data/kunit); and
the stream fed case by case by hand, for the order in which areas are written."""

from __future__ import annotations

import importlib.util
import io
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from commands import conformance, environment
from test_ktap import leaf_tests, parse_ktap

from conformance.interruption import Interruption
from conformance.model import CaseResult, Collection, Completeness, Report, Run
from conformance.platforms import detect
from conformance.plugin import interrupts, revision
from conformance.plugin.ktap_stream import KtapStream
from conformance.plugin.options import TARGET_DIR
from conformance.report.ktap import render_ktap
from conformance.report.load import read_report

KUNIT = Path(__file__).parent / "data" / "kunit"
TIMEOUT = 120

# Three areas, collected in this order: alpha (every kind of result line), beta (passes), gamma (its middle case can
# stop the run: STOP_WITH names the signal it sends to the run's main process).
MODULES = {
    "test_alpha.py": '''
import pytest

CONFORMANCE_AREA = "alpha"


@pytest.mark.refs("self-test")
@pytest.mark.parametrize("n", range(2))
def test_passes(n, observe):
    observe("seen", n)


@pytest.mark.refs("self-test")
def test_fails():
    assert False, "failing # on purpose\\nsecond line"


@pytest.mark.refs("self-test")
def test_unsupported():
    pytest.skip("no such mechanism here")
''',
    "test_beta.py": '''
import pytest

CONFORMANCE_AREA = "beta"


@pytest.mark.refs("self-test")
@pytest.mark.parametrize("n", range(3))
def test_passes(n):
    pass
''',
    "test_gamma.py": '''
import os
import signal
import threading

import pytest

CONFORMANCE_AREA = "gamma"


@pytest.mark.refs("self-test")
def test_first():
    pass


@pytest.mark.refs("self-test")
def test_stops_the_run():
    name = os.environ.get("STOP_WITH")
    if name == "WORKER" and os.environ.get("PYTEST_XDIST_WORKER"):
        os.kill(os.getpid(), signal.SIGKILL)  # the controller says the worker crashed running this case
    elif name:
        # A pytest-xdist worker's parent is the controller, which passes the signal on to every worker.
        os.kill(os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid(), signal.Signals[name])
        threading.Event().wait(60)  # until the signal unwinds this case (SIGKILL: the run is gone already)
        raise AssertionError("the signal did not stop the run")


@pytest.mark.refs("self-test")
def test_last():
    pass
''',
}
AREAS = {"alpha": ["test_passes[0]", "test_passes[1]", "test_fails", "test_unsupported"],
         "beta": ["test_passes[0]", "test_passes[1]", "test_passes[2]"],
         "gamma": ["test_first", "test_stops_the_run", "test_last"]}


def _run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """A pytest session of the crafted modules, streaming to stream.ktap: (exit status, the stream, its output)."""
    for name, text in MODULES.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
                           "--conformance-ktap", "stream.ktap", "--conformance-report", "report", *args],
                          cwd=tmp_path, env=environment(TMPDIR=str(tmp_path), **env), capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    return done.returncode, (tmp_path / "stream.ktap").read_text(encoding="utf-8"), done.stdout + done.stderr


def _report(tmp_path: Path):
    (path,) = (tmp_path / "report").glob("*.json")
    return read_report(path)


def results(tree) -> dict:
    """What a KTAP text says, whatever its order: each area's result, and its cases' results with their diagnostics."""
    return {area["description"]: (area["result"], area["directive"], area["reason"], {
        case["description"]: (case["result"], case["directive"], case["reason"], case["diagnostics"])
        for case in area["subtests"]["tests"]}) for area in tree["tests"]}


def _header(text: str) -> list[str]:
    return text.split("\n")[:5]  # the version line, the plan, the suite, the platform and the kernel


# --- the kernel's parser ----------------------------------------------------------------------------------------

def _load(name: str, **names):
    """One of the vendored modules, executed afresh while it and `names` are in sys.modules as it expects (it imports
    kunit_printer by that name; a dataclass looks its module up there); sys.modules as it was afterwards."""
    spec = importlib.util.spec_from_file_location(name, KUNIT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    names[name] = module
    saved = {key: sys.modules.get(key) for key in names}
    sys.modules.update(names)
    try:
        spec.loader.exec_module(module)
    finally:
        for key, value in saved.items():
            if value is None:
                del sys.modules[key]
            else:
                sys.modules[key] = value
    return module


def kunit_parse(text: str):
    """kunit_parser.parse_run_tests (Linux 6.12: it takes the lines alone) on the text: (its tree, what it printed).
    Loaded afresh each time, with its printer writing into a buffer of our own."""
    printed = io.StringIO()
    printer = _load("kunit_printer")
    printer.stdout = printer.Printer(printed)
    parser = _load("kunit_parser", kunit_printer=printer)
    tree = parser.parse_run_tests(text.splitlines(keepends=True))
    return tree, printed.getvalue()


def kunit_statuses(tree) -> dict:
    """area -> (its status, {case: status}), as kunit_parser.py names them."""
    return {area.name: (area.status.name, {case.name: case.status.name for case in area.subtests})
            for area in tree.subtests}


def _errors(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if "[ERROR]" in line]


COMPLETE_STATUSES = {
    "alpha": ("FAILURE", {"test_passes[0]": "SUCCESS", "test_passes[1]": "SUCCESS", "test_fails": "FAILURE",
                          "test_unsupported": "SKIPPED"}),
    "beta": ("SUCCESS", {case: "SUCCESS" for case in AREAS["beta"]}),
    "gamma": ("SUCCESS", {case: "SUCCESS" for case in AREAS["gamma"]}),
}


# --- complete runs ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    """One complete run in one process, in collection order: (the stream, the report)."""
    directory = tmp_path_factory.mktemp("serial")
    status, stream, output = _run(directory)
    assert status == 1, output[-3000:]  # test_fails
    return stream, _report(directory)


def _check_complete(stream: str, report) -> None:
    """The stream of a complete run carries what report/ktap.py renders of its report, in the order the areas and
    cases finished, and the kernel's parser reads it without an error."""
    rendered = render_ktap(report)
    tree = parse_ktap(stream)
    assert results(tree) == results(parse_ktap(rendered))
    assert _header(stream) == _header(rendered)
    assert tree["diagnostics"] == [*parse_ktap(rendered)["diagnostics"], f"the report is {report.completeness.text()}"]
    assert sorted(area["description"] for area in tree["tests"]) == sorted(AREAS)
    for area in tree["tests"]:
        assert sorted(case["description"] for case in area["subtests"]["tests"]) == sorted(AREAS[area["description"]])
    kunit, printed = kunit_parse(stream)
    assert _errors(printed) == [], printed
    assert kunit_statuses(kunit) == COMPLETE_STATUSES
    assert kunit.status.name == "FAILURE"


@pytest.mark.timeout(900)  # its setup may run the whole suite once for the session (conftest.WALL)
def test_a_serial_run_streams_its_lines_in_collection_order(serial_run):
    stream, report = serial_run
    assert stream.split("\n", 5)[5] == f"""\
  KTAP version 1
  # Subtest: alpha
  1..4
  # alpha.seen[0] = 0
  ok 1 test_passes[0]
  # alpha.seen[1] = 1
  ok 2 test_passes[1]
  # failing # on purpose
  #   second line
  # assert False
  not ok 3 test_fails
  # no such mechanism here
  ok 4 test_unsupported # SKIP no such mechanism here
not ok 1 alpha
  KTAP version 1
  # Subtest: beta
  1..3
  ok 1 test_passes[0]
  ok 2 test_passes[1]
  ok 3 test_passes[2]
ok 2 beta
  KTAP version 1
  # Subtest: gamma
  1..3
  ok 1 test_first
  ok 2 test_stops_the_run
  ok 3 test_last
ok 3 gamma
# Totals: pass:8 fail:1 xfail:0 xpass:0 skip:1 error:0
# the report is {report.completeness.text()}
"""
    _check_complete(stream, report)


def test_a_run_through_pytest_xdist_streams_what_its_report_says(tmp_path):
    status, stream, output = _run(tmp_path, "-n", "2")
    assert status == 1, output[-3000:]
    _check_complete(stream, _report(tmp_path))


@pytest.mark.timeout(900)  # its setup may run the whole suite once for the session (conftest.WALL)
def test_the_kernels_parser_notices_areas_that_interleave(serial_run):
    """The checks above have teeth: one case's line moved into another area's block, as a writer that interleaves
    areas would leave it, and kunit_parser.py reports it."""
    stream, _ = serial_run
    moved = "  ok 1 test_passes[0]\n"
    beta = stream.index("  # Subtest: beta\n")
    interleaved = stream[:beta].replace("not ok 1 alpha\n", moved + "not ok 1 alpha\n") + \
        stream[beta:].replace(moved, "", 1)
    _, printed = kunit_parse(interleaved)
    assert _errors(printed), printed
    with pytest.raises(AssertionError):
        parse_ktap(interleaved)


def test_a_case_whose_worker_died_is_streamed_as_the_report_has_it(tmp_path):
    status, stream, output = _run(tmp_path, "-n", "2", STOP_WITH="WORKER")
    assert status == 1, output[-3000:]
    report = _report(tmp_path)
    tree = parse_ktap(stream)
    assert results(tree) == results(parse_ktap(render_ktap(report)))
    (stopper,) = [test for test in leaf_tests(tree) if test["description"] == "test_stops_the_run"]
    assert (stopper["result"], stopper["directive"]) == ("not ok", "ERROR")
    assert re.fullmatch(r"did not finish: worker 'gw\d+' crashed while running .*", stopper["reason"]), stopper
    kunit, printed = kunit_parse(stream)
    assert _errors(printed) == [], printed
    assert kunit_statuses(kunit)["gamma"][1]["test_stops_the_run"] == "FAILURE"


# --- the order of the lines, event by event ---------------------------------------------------------------------

class _Collector:
    """What the stream asks of the collector: the collection, each settled case's result, and the report."""

    def __init__(self, cases: dict) -> None:
        self.collection = Collection({key: case_id for key, case_id in cases.items()})
        self.settled: dict = {}
        self.report = None

    def case_result(self, nodeid):
        return self.settled.get(nodeid)


class _Stream:
    """A KtapStream fed by hand: a case settles, and the lines written so far can be read at once."""

    def __init__(self, tmp_path: Path, cases: dict) -> None:
        self.path = tmp_path / "stream.ktap"
        self.collector = _Collector(cases)
        config = SimpleNamespace(stash=pytest.Stash(), pluginmanager=SimpleNamespace(
            get_plugin=lambda name: self.collector, has_plugin=lambda name: False))
        config.stash[TARGET_DIR] = str(tmp_path)
        self.stream = KtapStream(config, str(self.path))

    def settle(self, key: str, outcome: str = "pass") -> list[str]:
        """The case settles; the lines its report added to the stream."""
        before = self.path.read_text()
        self.collector.settled[key] = CaseResult(self.collector.collection.cases[key], outcome)
        self.stream.pytest_runtest_logreport(SimpleNamespace(nodeid=key))
        return self.path.read_text()[len(before):].splitlines()

    def end(self, completeness: Completeness) -> list[str]:
        before = self.path.read_text()
        report = Report.build(revision.this_suite(), detect.facts(str(self.path.parent)),
                              Run("2026-01-01T00:00:00Z", 1.0, 0, [], 1), self.collector.settled.values(),
                              completeness=completeness)
        self.stream._end(report)
        return self.path.read_text()[len(before):].splitlines()


@pytest.fixture
def five_cases(tmp_path):
    """A stream of five cases in three areas, closed after the test."""
    stream = _Stream(tmp_path, FIVE_CASES)
    yield stream
    stream.stream.out.close()


FIVE_CASES = {"n-a1": "a/test_1", "n-a2": "a/test_2", "n-b1": "b/test_1", "n-b2": "b/test_2", "n-c1": "c/test_1"}


def test_one_area_streams_while_the_others_wait_and_a_whole_one_follows_first(five_cases):
    stream = five_cases
    stream.stream.pytest_runtestloop(None)  # not a pytest-xdist controller, but nothing in the stash: no plan yet
    assert stream.path.read_text() == "KTAP version 1\n"
    plan, suite, *_ = stream.settle("n-a1")  # the collection rides on the first report
    assert plan == "1..3" and suite.startswith("# suite: conformance ")
    text = stream.path.read_text()
    assert text.endswith("  KTAP version 1\n  # Subtest: a\n  1..2\n  ok 1 test_1\n")  # a opens, streams
    assert stream.settle("n-b1") == []  # b waits for a
    assert stream.settle("n-c1", "fail") == []  # c is whole, but a is open
    assert stream.settle("n-b2") == []  # b is whole too, and its first case settled before c's
    assert stream.settle("n-a2") == [
        "  ok 2 test_2", "ok 1 a",
        "  KTAP version 1", "  # Subtest: b", "  1..2", "  ok 1 test_1", "  ok 2 test_2", "ok 2 b",
        "  KTAP version 1", "  # Subtest: c", "  1..1", "  not ok 1 test_1", "not ok 3 c",
    ]
    assert stream.end(Completeness(collected=5, finished=5)) == [
        "# Totals: pass:4 fail:1 xfail:0 xpass:0 skip:0 error:0",
        "# the report is complete: all 5 cases of the suite ran to their end",
    ]
    parse_ktap(stream.path.read_text())


def test_a_whole_area_goes_before_one_whose_case_settled_first(five_cases):
    stream = five_cases
    stream.settle("n-a1")
    stream.settle("n-b1")
    stream.settle("n-c1")  # c is whole: it follows a before b, whose case settled first
    assert stream.settle("n-a2") == [
        "  ok 2 test_2", "ok 1 a",
        "  KTAP version 1", "  # Subtest: c", "  1..1", "  ok 1 test_1", "ok 2 c",
        # b is not whole: it opens with what has settled, and streams the rest as it settles
        "  KTAP version 1", "  # Subtest: b", "  1..2", "  ok 1 test_1",
    ]
    assert stream.settle("n-b2") == ["  ok 2 test_2", "ok 3 b"]


def test_the_end_of_an_interrupted_run_closes_the_open_area_and_writes_the_waiting_ones(five_cases):
    stream = five_cases
    stream.settle("n-a1")
    stream.settle("n-c1")
    interrupted = Completeness("interrupted", "SIGINT", [], 5, 2, [])
    assert stream.end(interrupted) == [
        "  # no result: the run was interrupted by SIGINT",
        "  not ok 2 test_2 # ERROR no result: the run was interrupted by SIGINT", "not ok 1 a",
        "  KTAP version 1", "  # Subtest: c", "  1..1", "  ok 1 test_1", "ok 2 c",
        "  KTAP version 1", "  # Subtest: b", "  1..2",
        "  # no result: the run was interrupted by SIGINT",
        "  not ok 1 test_1 # ERROR no result: the run was interrupted by SIGINT",
        "  # no result: the run was interrupted by SIGINT",
        "  not ok 2 test_2 # ERROR no result: the run was interrupted by SIGINT", "not ok 3 b",
        "# Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0",
        f"# the report is {interrupted.text()}",
    ]
    parse_ktap(stream.path.read_text())


class _SignalAfterWriting:
    """The stream's file, with SIGINT landing (handled as the run's handler would) just after the first write that
    holds `text` has reached the file."""

    def __init__(self, out, interruption: Interruption, text: str) -> None:
        self.out, self.interruption, self.text = out, interruption, text

    def write(self, data: str) -> int:
        written = self.out.write(data)
        if self.text in data and self.interruption.signal is None:
            self.out.flush()
            self.interruption.handle(signal.SIGINT, None)
        return written

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.close()


def test_a_signal_while_lines_are_written_is_raised_once_they_are_recorded_as_written(five_cases, monkeypatch):
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # the interruption sets one of its own
    stream = five_cases
    interruption = Interruption(deferring=False)
    stream.stream.config.stash[interrupts.INTERRUPTION] = interruption
    stream.stream.out = _SignalAfterWriting(stream.stream.out, interruption, "ok 1 test_1")
    with pytest.raises(KeyboardInterrupt):
        stream.settle("n-a1")
    assert interruption.stopping  # raised, once the line was recorded: the end does not write it again
    stream.end(Completeness("interrupted", "SIGINT", [], 5, 1, []))
    text = stream.path.read_text()
    assert text.count("\n  ok 1 test_1\n") == 1  # a's, written once (b's and c's did not run)
    assert [case["description"] for case in leaf_tests(parse_ktap(text))] == \
        ["test_1", "test_2", "test_1", "test_2", "test_1"]


# --- runs that do not finish ------------------------------------------------------------------------------------

def _not_finished(stream: str, why: str) -> list[str]:
    return [line.strip() for line in stream.splitlines() if why in line and line.lstrip().startswith("not ok")]


@pytest.mark.parametrize(("workers", "sig"), [("0", "SIGINT"), ("2", "SIGTERM")],
                         ids=["serial-sigint", "xdist-sigterm"])
def test_an_interrupted_run_closes_every_area_it_planned(tmp_path, workers, sig):
    status, stream, output = _run(tmp_path, "-n", workers, STOP_WITH=sig)
    assert status == 128 + signal.Signals[sig], output[-3000:]
    report = _report(tmp_path)
    assert report.completeness.ended == "interrupted"
    tree = parse_ktap(stream)  # every planned area and case has its line
    assert {area: sorted(cases) for area, (_, _, _, cases) in results(tree).items()} == \
        {area: sorted(cases) for area, cases in AREAS.items()}
    stopper = next(test for test in leaf_tests(tree) if test["description"] == "test_stops_the_run")
    assert (stopper["result"], stopper["directive"]) == ("not ok", "ERROR")
    # Its start is known in one process; a pytest-xdist controller may not have heard of it when the signal came.
    reasons = [f"did not finish: the run was interrupted by {sig}"] + \
        ([f"no result: the run was interrupted by {sig}"] if workers != "0" else [])
    assert stopper["reason"] in reasons
    # A case the report holds has its line; one it does not hold has no result, and says so.
    reported = {case.id: case for case in report.cases}
    for area in tree["tests"]:
        for case in area["subtests"]["tests"]:
            case_id = f"{area['description']}/{case['description']}"
            if case_id in reported:
                assert case["result"] == ("not ok" if reported[case_id].outcome in ("fail", "error") else "ok")
            else:
                assert (case["result"], case["directive"], case["reason"]) == \
                    ("not ok", "ERROR", f"no result: the run was interrupted by {sig}"), case
    assert stream.endswith(f"# the report is {report.completeness.text()}\n")
    assert report.completeness.text().startswith(f"incomplete: interrupted by {sig}")
    kunit, printed = kunit_parse(stream)
    assert _errors(printed) == [], printed
    statuses = kunit_statuses(kunit)
    assert statuses["gamma"][0] == "FAILURE" and statuses["gamma"][1]["test_stops_the_run"] == "FAILURE"
    assert kunit.status.name == "FAILURE"
    if workers == "0":  # in one process, everything before the signal finished, nothing after it started
        assert statuses["alpha"] == COMPLETE_STATUSES["alpha"] and statuses["beta"] == COMPLETE_STATUSES["beta"]
        assert _not_finished(stream, "no result:") == [f"not ok 3 test_last # ERROR no result: the run was "
                                                         f"interrupted by {sig}"]


def test_a_killed_run_leaves_what_it_wrote_and_the_kernels_parser_calls_the_rest_crashed(tmp_path):
    status, stream, output = _run(tmp_path, "-n", "0", STOP_WITH="SIGKILL")
    assert status == -signal.SIGKILL, output[-3000:]
    assert stream.endswith("\n")  # every line whole
    lines = stream.splitlines()
    # Written as the cases finished: the two areas before the signal to their end, the third up to its first case.
    assert lines[-4:] == ["  KTAP version 1", "  # Subtest: gamma", "  1..3", "  ok 1 test_first"]
    assert "ok 2 beta" in lines and "not ok 1 alpha" in lines
    with pytest.raises(AssertionError):
        parse_ktap(stream)  # the plans are not met: strict parsers refuse it
    kunit, printed = kunit_parse(stream)
    statuses = kunit_statuses(kunit)
    assert statuses["alpha"] == COMPLETE_STATUSES["alpha"] and statuses["beta"] == COMPLETE_STATUSES["beta"]
    assert statuses["gamma"][0] == "TEST_CRASHED"
    assert statuses["gamma"][1]["test_first"] == "SUCCESS"
    assert kunit.status.name == "TEST_CRASHED"
    assert any("missing expected subtest!" in line for line in _errors(printed)), printed


# --- the command and its option ---------------------------------------------------------------------------------

def test_run_with_ktap_streams_the_report_on_standard_output(tmp_path):
    done = conformance("run", "--ktap", "-n", "2", "--report-dir", str(tmp_path), "--",
                       "-k", "test_per_message_maximum or test_zero_length", env=environment(TMPDIR=str(tmp_path)))
    assert done.status == 0, done.err[-3000:]
    assert "passed" in done.err and "KTAP version 1" not in done.err
    (written,) = tmp_path.glob("*.ktap")
    streamed, rendered = parse_ktap(done.out), parse_ktap(written.read_text(encoding="utf-8"))
    assert results(streamed) == results(rendered) and len(leaf_tests(streamed)) > 3
    assert _header(done.out) == _header(written.read_text(encoding="utf-8"))
    assert re.search(r"^# the report is incomplete: a selection of the suite", done.out, re.MULTILINE)


def test_a_stream_that_cannot_be_opened_is_a_usage_error(tmp_path):
    for name, text in MODULES.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--conformance-ktap",
                           str(tmp_path / "missing" / "stream.ktap")], cwd=tmp_path, capture_output=True, text=True,
                          env=environment(TMPDIR=str(tmp_path)), timeout=TIMEOUT, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 4 and lines == [f"ERROR: --conformance-ktap {tmp_path}/missing/stream.ktap: No such file "
                                              "or directory"], done.stdout + done.stderr
