"""On the controller (or the only process): every case's phases, from whichever worker ran it, become the run's
report; it is kept in the config's stash for whoever started the session in this process (`conformance run --ktap`,
`conformance bench`), written where --conformance-report says, and summed up at the end of pytest's output."""

from __future__ import annotations

import datetime
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .. import __version__, settings
from ..model import (
    Capability,
    CaseResult,
    Expectation,
    Report,
    Run,
    Suite,
    UnmatchedDeviation,
    read_phase,
    worst,
)
from ..platforms import detect, probes
from .collection import UNMATCHED, unmatched_from_worker
from .options import case_timeout, target_dir

REPORT = pytest.StashKey[Report]()
NO_REFERENCES = "(none recorded)"


def _git_commit() -> str | None:
    top = Path(__file__).resolve().parents[2]
    if not (top / ".git").exists():
        return None
    try:
        # The suite's code runs from this checkout already, so trusting it adds nothing; without this, git
        # refuses a checkout another uid owns, and an unprivileged run would record no commit.
        out = subprocess.run(["git", "-c", f"safe.directory={top}", "-C", str(top), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@dataclass
class _Phases:
    """A case's phases as they arrive."""

    id: str
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (outcome, reason) per phase
    references: tuple[str, ...] = ()
    observations: dict = field(default_factory=dict)
    expectation: Expectation | None = None
    duration: float = 0.0

    def result(self) -> CaseResult:
        outcome = worst(o for o, _ in self.outcomes)
        reason = "; ".join(dict.fromkeys(r for o, r in self.outcomes if o == outcome and r))
        return CaseResult(self.id, outcome, reason, self.references or (NO_REFERENCES,), self.observations,
                          self.expectation, round(self.duration, 6))


class ReportCollector:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cases: dict[str, _Phases] = {}  # by pytest node id
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.clock = time.monotonic()
        self.written: dict = {}
        self.report: Report | None = None
        self.workers_unmatched: list[UnmatchedDeviation] | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        phase = read_phase(report.user_properties)
        if phase is None:
            return
        case = self.cases.setdefault(report.nodeid, _Phases(phase.case_id))
        case.duration += report.duration
        case.outcomes.append((phase.outcome, phase.reason))
        case.expectation = phase.expectation or case.expectation
        if phase.references is not None:
            case.references = phase.references
        case.observations.update(phase.observations)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        if self.workers_unmatched is None:
            self.workers_unmatched = unmatched_from_worker(node)

    def unmatched(self) -> list[UnmatchedDeviation]:
        found = self.config.stash.get(UNMATCHED, None)
        return (found if found is not None else self.workers_unmatched) or []

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
        suite = Suite("conformance", __version__, _git_commit())
        return Report.build(suite, platform, run, self._cases(), self.unmatched())

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.cases:
            return
        if self.unmatched() and self.config.getoption("conformance_strict") and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        self.report = self.build(exitstatus)
        self.config.stash[REPORT] = self.report
        directory = self.config.getoption("conformance_report")
        if directory:
            from ..report.write import write_report

            self.written = write_report(self.report, Path(directory))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.report:
            return
        counts = ", ".join(f"{n} {o}" for o, n in self.report.summary.items() if n)
        terminalreporter.write_sep("=", f"conformance on {self.report.platform.id}: {counts}")
        for entry in self.report.unmatched_deviations:
            terminalreporter.write_line(f"expectation entry matching no case: {entry.source}: {entry.case}")
        for kind, path in self.written.items():
            terminalreporter.write_line(f"report ({kind}): {os.path.relpath(path)}")
