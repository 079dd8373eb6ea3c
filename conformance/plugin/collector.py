"""On the controller (or the only process): every case's phases, from whichever worker ran it, become the run's
report; it is kept in the config's stash for whoever started the session in this process (`conformance run --ktap`,
`conformance bench`), written where --conformance-report says, and summed up at the end of pytest's output.

The report is the whole truth of its run (model.Completeness): which cases the run selected (from the collecting
process's model.Collection), which ran to their end (their teardown was reported), and why the run ended. A case that
started and did not finish (its worker crashed, the run was interrupted) is an `error` saying so, never the `pass`
of the phases it did report. At the end the run's last processes are killed and reaped and its directory removed.
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from .. import settings, traceability
from ..harness import leaks
from ..model import (
    ERROR,
    FINISHED,
    INTERRUPTED,
    STOPPED,
    Capability,
    CaseResult,
    Collection,
    Completeness,
    Expectation,
    Report,
    Run,
    UnmatchedDeviation,
    read_collection,
    read_phase,
    worst,
)
from ..platforms import detect, probes
from . import interrupts, revision, rundir, scope, workers
from .collection import UNMATCHED, selection, unmatched_from_worker
from .options import case_timeout, target_dir

REPORT = pytest.StashKey[Report]()
CASE_NODES = pytest.StashKey[dict]()  # pytest node id -> case id, of every case in REPORT
_STOP_REASON = pytest.StashKey[str]()
NO_REFERENCES = "(none recorded)"


@dataclass
class _Phases:
    """A case's phases as they arrive."""

    id: str
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (outcome, reason) per phase
    references: tuple[str, ...] = ()
    observations: dict = field(default_factory=dict)
    expectation: Expectation | None = None
    duration: float = 0.0
    finished: bool = False  # its teardown was reported

    def result(self) -> CaseResult:
        outcome = worst(o for o, _ in self.outcomes)
        reason = "; ".join(dict.fromkeys(r for o, r in self.outcomes if o == outcome and r))
        return CaseResult(self.id, outcome, reason, self.references or (NO_REFERENCES,), self.observations,
                          self.expectation, round(self.duration, 6))


def report_of_an_interrupted_start(target: str, signal_name: str, argv: list[str], started: datetime.datetime,
                                   seconds: float) -> Report:
    """The report of a run that a signal stopped before its session began: no case, and why."""
    run = Run(started=started.strftime("%Y-%m-%dT%H:%M:%SZ"), duration=round(seconds, 3), workers=0, argv=argv,
              exit_status=128 + int(signal.Signals[signal_name]), deadline_scale=settings.deadline_scale(),
              case_timeout=None)
    completeness = Completeness(INTERRUPTED, f"{signal_name}, before the session began")
    return Report.build(revision.this_suite(), detect.facts(target), run, [],
                        completeness=completeness)


class ReportCollector:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cases: dict[str, _Phases] = {}  # by pytest node id
        self.begun: set[str] = set()  # node ids whose protocol started
        self.mapping_problem = ""  # why the report could not say how the anchor suites fared
        self.crashed: dict[str, str] = {}  # node id -> what pytest-xdist said of the worker that died running it
        self.collection: Collection | None = None
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.clock = time.monotonic()
        self.written: dict = {}
        self.report: Report | None = None
        self.workers_unmatched: list[UnmatchedDeviation] | None = None
        self.worker_signal: str | None = None
        self.workers_watching = False

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.begun.add(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.collection is None:
            self.collection = read_collection(report.user_properties)
        phase = read_phase(report.user_properties)
        if phase is None:
            if report.when not in ("setup", "call", "teardown") and report.failed:
                self.crashed[report.nodeid] = str(report.longrepr)  # xdist's report for a crashed worker's test
            return
        case = self.cases.setdefault(report.nodeid, _Phases(phase.case_id))
        case.duration += report.duration
        case.outcomes.append((phase.outcome, phase.reason))
        case.expectation = phase.expectation or case.expectation
        if phase.references is not None:
            case.references = phase.references
        case.observations.update(phase.observations)
        case.finished = case.finished or report.when == "teardown"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        if self.workers_unmatched is None:
            self.workers_unmatched = unmatched_from_worker(node)
        self.worker_signal = self.worker_signal or interrupts.from_worker(node)
        self.workers_watching = self.workers_watching or scope.worker_watching(node)

    def _signal(self) -> str | None:
        return interrupts.of(self.config).signal or self.worker_signal

    def unmatched(self) -> list[UnmatchedDeviation]:
        found = self.config.stash.get(UNMATCHED, None)
        return (found if found is not None else self.workers_unmatched) or []

    def _unfinished_reason(self, nodeid: str) -> str:
        if nodeid in self.crashed:
            return f"did not finish: {self.crashed[nodeid]}"
        if self._signal() or interrupts.stopping(self.config):
            return f"did not finish: the run was interrupted by {self._signal() or 'a signal'}"
        return "did not finish: the session ended before its teardown"

    def case_result(self, nodeid: str) -> CaseResult | None:
        """A case's result as the report will give it, once that is settled: the case finished, or its worker died
        running it (an error saying so, as _close_unfinished makes it). None while it may still report."""
        case = self.cases.get(nodeid)
        if case is not None and case.finished:
            return case.result()
        known = self.collection.cases if self.collection else {}
        if nodeid not in self.crashed or (case is None and nodeid not in known):
            return None
        case = case or _Phases(known[nodeid])
        return replace(case, outcomes=[*case.outcomes, (ERROR, self._unfinished_reason(nodeid))]).result()

    def _close_unfinished(self) -> None:
        """Every case that started and did not finish becomes an error saying why."""
        known = self.collection.cases if self.collection else {}
        for nodeid in sorted(self.begun | set(self.crashed) | set(self.cases)):
            case = self.cases.get(nodeid)
            if case is None:
                if nodeid not in known:
                    continue  # not a conformance case
                case = self.cases[nodeid] = _Phases(known[nodeid])
            if not case.finished:
                case.outcomes.append((ERROR, self._unfinished_reason(nodeid)))

    def _completeness(self) -> Completeness:
        # No collection arrived (no worker reported anything): what this process knows of the selection stands in.
        collection = self.collection or Collection({nodeid: case.id for nodeid, case in self.cases.items()},
                                                   selection=selection(self.config))
        unfinished = sorted(case.id for case in self.cases.values() if not case.finished)
        finished = sum(1 for case in self.cases.values() if case.finished)
        if workers.start_failure(self.config):
            ended, why = STOPPED, workers.start_failure(self.config)
        elif self._signal() or (interrupts.stopping(self.config) and not interrupts.stopped_because(self.config)):
            ended, why = INTERRUPTED, self._signal() or "an interrupt"
        elif interrupts.stopped_because(self.config) or self.config.stash.get(_STOP_REASON, None):
            ended, why = STOPPED, interrupts.stopped_because(self.config) or self.config.stash[_STOP_REASON]
        elif finished + len(unfinished) < len(collection.cases):
            ended, why = STOPPED, "the session ended before it ran every selected case"
        else:
            ended, why = FINISHED, ""
        return Completeness(ended, why, list(collection.selection), len(collection.cases), finished, unfinished)

    def _cases(self) -> list[CaseResult]:
        results, owners = [], {}
        for case in self.cases.values():
            for key in case.observations:
                if key in owners and owners[key] != case.id:
                    raise pytest.UsageError(f"observation {key} recorded by both {owners[key]} and {case.id}")
                owners[key] = case.id
            results.append(case.result())
        return results

    def build(self, exitstatus: int) -> Report:
        platform = detect.facts(target_dir(self.config))
        platform.capabilities = {name: Capability(cap.supported, cap.reason)
                                 for name, cap in probes.probe_all().items()}
        workers = getattr(self.config.option, "numprocesses", None)
        run = Run(started=self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  duration=round(time.monotonic() - self.clock, 3),
                  workers=workers if isinstance(workers, int) else 0,
                  argv=[str(a) for a in self.config.invocation_params.args],
                  exit_status=int(exitstatus), deadline_scale=settings.deadline_scale(),
                  case_timeout=case_timeout(self.config))
        suite = revision.this_suite()
        self._close_unfinished()
        cases = self._cases()
        try:
            anchors = traceability.coverage(cases)
        except traceability.TraceabilityError as e:  # a broken mapping must not cost the run its report
            self.mapping_problem, anchors = str(e), []
        return Report.build(suite, platform, run, cases, self.unmatched(), self._completeness(), anchors)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """A run whose session could not start (its workers could not) still reports, and leaves nothing."""
        if self.report is None and workers.start_failure(config):
            workers.forget_unstarted(config)
            leaks.reap_every_child()
            self.report = self.build(pytest.ExitCode.TESTS_FAILED)
            self._write()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if scope.watching(self.config) or self.workers_watching or self.cases or self.collection \
                or self.config.getoption("conformance_report") is not None:
            leaks.reap_every_child()  # the last sweep; another project's session keeps its processes (plugin/scope)
        rundir.remove(self.config)
        if session.shouldfail or session.shouldstop:
            self.config.stash[_STOP_REASON] = str(session.shouldfail or session.shouldstop)
        if self._signal():
            session.exitstatus = exitstatus = 128 + int(signal.Signals[self._signal()])
        has_cases = bool(self.cases or (self.collection and self.collection.cases))
        asked = self.config.getoption("conformance_report") is not None
        if not has_cases and not (asked and (self._signal() or interrupts.stopping(self.config))):
            return  # no conformance case in this session; an interrupted one still reports, if a report was asked for
        if self.unmatched() and self.config.getoption("conformance_strict") and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        self.report = self.build(exitstatus)
        self._write()

    def _write(self) -> None:
        self.config.stash[REPORT] = self.report
        self.config.stash[CASE_NODES] = {nodeid: case.id for nodeid, case in self.cases.items()}
        directory = self.config.getoption("conformance_report")
        if directory:
            from ..report.write import write_report

            self.written = write_report(self.report, Path(directory))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.report:
            return
        counts = ", ".join(f"{n} {o}" for o, n in self.report.summary.items() if n) or "no case ran"
        terminalreporter.write_sep("=", f"conformance on {self.report.platform.id}: {counts}")
        terminalreporter.write_line(f"the report is {self.report.completeness.text()}")
        if self.mapping_problem:
            terminalreporter.write_line(f"the report says nothing of the anchor suites: {self.mapping_problem}")
        for entry in self.report.unmatched_deviations:
            terminalreporter.write_line(f"expectation entry matching no case: {entry.source}: {entry.case}")
        for kind, path in self.written.items():
            terminalreporter.write_line(f"report ({kind}): {os.path.relpath(path)}")
