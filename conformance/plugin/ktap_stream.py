"""KTAP version 1 written as the run goes (--conformance-ktap FILE, `-` for standard output), on the controller (or
the only process), so that a run that hangs or is killed still leaves a log kernel CI tooling can parse.

As kselftest writes it: the version line first; the plan (one nested test per area) as soon as the collection is
known (after collection in one process, with the first test report under pytest-xdist); then each area as a nested
test, `# Subtest: <area>` after its version line, its cases' lines as they settle (they finished, or their worker
died running them: the collector's `case_result`); and at the end the totals and whether the report is complete.
Every line is flushed as it is written; what a case's lines say is what report/ktap.py writes for it.

Under pytest-xdist cases of different areas finish interleaved, but a nested test's lines must be contiguous. One
area is open at a time and streams its cases as they settle; a case of another area waits until its area is opened.
When the open area's last case is written, its result line closes it, and the next one opens: an area all of whose
cases have settled first (it is written whole and closed at once), else the one whose waiting case settled first. So
a case's line is written as soon as its area can be, and areas and cases are numbered in the order they are written,
not in the report's order: a complete run's stream carries the same results as report/ktap.py's rendering of its
report, area by area and case by case, in another order. In one process, without random order, the two orders are
the same (areas in collection order).

A run that ends before every case settled (a signal, -x, a worker that could not start) still closes every area it
planned: a case the report gives a result (an error saying it did not finish) has that result, one it never started
is `not ok ... # ERROR` saying it did not run; the last line says the report is incomplete and why. A run killed
outright (SIGKILL) leaves the lines written so far, each whole: kunit_parser.py reads the missing ones as crashed.
A line and the state that says it was written are never parted by a signal: a signal that lands meanwhile is raised
once they are (see `_held`).
"""

from __future__ import annotations

import contextlib
import os

import pytest

from ..model import ERROR, INTERRUPTED, STOPPED, CaseResult, Collection, Report
from ..platforms import detect
from ..report import ktap
from . import interrupts, revision
from .collection import COLLECTION
from .options import target_dir

STANDARD_OUTPUT = "-"
_streams_to_standard_output = []  # this process's, in the order they began


def streamed_to_standard_output() -> bool:
    """A stream to standard output began in this process (`conformance run --ktap` prints the report's KTAP itself
    when none did: a signal stopped pytest before it configured its plugins)."""
    return bool(_streams_to_standard_output)


def _open(destination: str):
    """The stream's file; standard output is file descriptor 1 as it is now, before pytest captures it (under
    `conformance run --ktap` sys.stdout is standard error by then)."""
    try:
        descriptor = os.dup(1) if destination == STANDARD_OUTPUT else \
            os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    except OSError as e:
        raise pytest.UsageError(f"--conformance-ktap {destination}: {e.strerror}") from None
    # Report text may hold a lone surrogate; every line ends in "\n" alone.
    return os.fdopen(descriptor, "w", encoding="utf-8", errors="backslashreplace", newline="\n")


def _not_run_reason(report: Report | None) -> str:
    if report is None:
        return "no result: the run ended without its report"
    completeness = report.completeness
    if completeness.ended == INTERRUPTED:
        return f"did not run: the run was interrupted by {completeness.why}"
    if completeness.ended == STOPPED:
        return f"did not run: the run stopped early ({completeness.why})"
    return "did not run: the session ended before it"


class KtapStream:
    """Registered on the controller (or the only process) when --conformance-ktap is given."""

    def __init__(self, config: pytest.Config, destination: str) -> None:
        self.config = config
        self.out = _open(destination)
        if destination == STANDARD_OUTPUT:
            _streams_to_standard_output.append(self)
        self.planned = False
        self.cases: dict[str, list[str]] = {}  # area -> its cases' keys (node ids), from the collection
        self.area_of: dict[str, str] = {}  # case key -> area
        self.unwritten: dict[str, set[str]] = {}  # area -> keys of its cases not written yet; areas not closed yet
        self.waiting: dict[str, dict[str, CaseResult | str]] = {}  # area -> key -> result (or why it has none)
        self.open: str | None = None  # the area whose nested test is being written
        self.written = 0  # the open area's cases written so far
        self.outcomes: set[str] = set()  # theirs
        self.closed = 0  # areas written to their result line
        self.ended = False
        self.broken = ""  # why the stream could not be written to any more
        with self._writing(["KTAP version 1"]):
            pass

    def _collector(self):
        return self.config.pluginmanager.get_plugin("conformance-report")

    # --- the hooks ------------------------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """One process: the collection is known now. A pytest-xdist controller collects nothing: its collection
        rides on the first test report."""
        if COLLECTION in self.config.stash and not self.config.pluginmanager.has_plugin("dsession"):
            self._plan(self.config.stash[COLLECTION])

    @pytest.hookimpl(trylast=True)  # after the collector has taken the report in
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        collector = self._collector()
        if not self.planned and collector.collection is not None:
            self._plan(collector.collection)
        key = report.nodeid
        if self.ended or key not in self.area_of:
            return
        area = self.area_of[key]
        if key not in self.unwritten.get(area, ()) or key in self.waiting.get(area, {}):
            return  # settled already
        result = collector.case_result(key)
        if result is not None:
            self.waiting.setdefault(area, {})[key] = result
            self._advance()

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session):
        result = yield
        if self._collector().report is not None:  # the collector has built it: the run's last word
            self._end(self._collector().report)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_unconfigure(self, config: pytest.Config):
        try:
            return (yield)
        finally:
            try:
                self._end(self._collector().report)  # a run whose workers could not start reports only now
            finally:
                with contextlib.suppress(OSError):  # what is left of a stream whose reader has gone
                    self.out.close()

    # --- writing --------------------------------------------------------------------------------------------------

    def _plan(self, collection: Collection) -> None:
        for key, case_id in collection.cases.items():
            area = CaseResult(case_id, ERROR).area
            self.cases.setdefault(area, []).append(key)
            self.area_of[key] = area
        self.unwritten = {area: set(keys) for area, keys in self.cases.items()}
        suite, platform = revision.this_suite(), detect.facts(target_dir(self.config))
        with self._writing([f"1..{len(self.cases)}", *ktap.header_diagnostics(suite, platform)]):
            self.planned = True

    def _next_area(self) -> str | None:
        whole = [area for area, cases in self.waiting.items() if len(cases) == len(self.unwritten[area])]
        return (whole or list(self.waiting) or [None])[0]

    def _advance(self) -> None:
        """Write what can be written: the open area's settled cases, and every area that can follow it."""
        while True:
            if self.open is None:
                area = self._next_area()
                if area is None:
                    return
                lines = ["KTAP version 1", ktap.subtest_header(area), f"1..{len(self.cases[area])}"]
                with self._writing([ktap.INDENT + line for line in lines]):
                    self.open, self.written, self.outcomes = area, 0, set()
            area = self.open
            for key, result in list(self.waiting.get(area, {}).items()):
                number = self.written + 1
                if isinstance(result, CaseResult):
                    lines, outcome = ktap.case_lines(result, number), result.outcome
                else:
                    label = CaseResult(self._case_id(key), ERROR).label
                    lines, outcome = ktap.not_run_lines(label, number, result), ERROR
                with self._writing([ktap.INDENT + line for line in lines]):
                    self.written += 1
                    self.outcomes.add(outcome)
                    self.unwritten[area].discard(key)
                    del self.waiting[area][key]
                    if not self.waiting[area]:
                        del self.waiting[area]  # the next case of it to settle waits in its own turn
            if self.unwritten[area]:
                return
            with self._writing([ktap.area_result_line(area, self.outcomes, self.closed + 1)]):
                del self.unwritten[area]
                self.open = None
                self.closed += 1

    def _end(self, report: Report | None) -> None:
        """Every planned area written to its end, then the totals and how complete the report is."""
        if self.ended:
            return
        if not self.planned:
            # No test report arrived (the run was stopped before any worker reported): the report's cases stand for
            # the collection, keyed by their ids.
            self._plan(Collection({case.id: case.id for case in report.cases} if report else {}))
        results = {case.id: case for case in report.cases} if report else {}
        reason = _not_run_reason(report)
        for area, keys in self.unwritten.items():
            for key in sorted(keys, key=self.cases[area].index):
                self.waiting.setdefault(area, {}).setdefault(key, results.get(self._case_id(key), reason))
        self._advance()
        lines = [] if self.cases else [ktap.NO_CASES]
        if report is not None:
            lines += ktap.footer_diagnostics(report)
            lines.append(ktap.diagnostic(f"the report is {report.completeness.text()}"))
        else:
            lines.append(ktap.diagnostic("the run ended without its report"))
        with self._writing(lines):
            self.ended = True

    def _case_id(self, key: str) -> str:
        collection = self._collector().collection or self.config.stash.get(COLLECTION, None)
        return collection.cases.get(key, key) if collection else key

    @contextlib.contextmanager
    def _writing(self, lines: list[str]):
        """The lines, whole and flushed, then the block (which records them as written), with no signal between. A
        stream that cannot be written to (its reader has gone) is given up; the run goes on, and its summary says so."""
        with _held(self.config):
            if not self.broken:
                try:
                    self.out.write("".join(ktap.defused(line) + "\n" for line in lines))
                    self.out.flush()
                except OSError as e:
                    self.broken = f"the KTAP stream stopped: {e.strerror or e}"
            yield

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.broken:
            terminalreporter.write_line(self.broken)


@contextlib.contextmanager
def _held(config: pytest.Config):
    """Signals wait (they are only noted) while the block runs, and the first raises after it, as it would have."""
    interruption = interrupts.of(config) if interrupts.INTERRUPTION in config.stash else None
    if interruption is None or interruption.deferring:
        yield
        return
    interruption.deferring = True
    try:
        yield
    finally:
        interruption.resume()


def register(config: pytest.Config) -> None:
    """Stream KTAP where --conformance-ktap says, if it says anywhere."""
    destination = config.getoption("conformance_ktap", None)
    if destination is not None:
        config.pluginmanager.register(KtapStream(config, destination), "conformance-ktap-stream")
