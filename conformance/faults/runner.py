"""Runs the suite's cases with the fault layer loaded: once with no fault (the control), then once per fault on the
areas it touches, several at a time. Each run is a pytest process of its own with its own report directory; what
it printed is kept beside its report, and a run that does not end within its deadline is killed and recorded as
unfinished, never read as a result."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .. import settings
from ..harness.deadlines import deadline
from ..model import FAILING, FINISHED, STOPPED, Report
from ..report.load import ReportError, read_report
from . import layer
from .catalogue import AREAS

RUN_DEADLINE = 600.0  # seconds, scaled: one area set's run, far above what it takes (the control: about 40 s)
# A fault's run stops at its tenth red case: that it is caught is settled, and a fault that makes each case wait for
# its deadline would otherwise cost minutes. Its counts are then what it reached (the report says it stopped).
MAX_RED = 10
CONTROL = "control"


@dataclass
class Outcome:
    """One run: what it selected, its report if it wrote a whole one, and why not otherwise."""

    name: str  # the fault, or CONTROL
    areas: list[str]
    seconds: float = 0.0
    report: Report | None = None
    problem: str = ""  # why there is no usable report ("" when there is one)
    status: int | None = None
    cases: dict[str, str] = field(default_factory=dict)  # case id -> outcome
    observations: dict[str, object] = field(default_factory=dict)
    stopped_at_max: bool = False  # it stopped at its MAX_RED-th red case, as a fault's run is meant to

    @property
    def red(self) -> int:
        return sum(1 for outcome in self.cases.values() if outcome in FAILING)


def selection(areas: list[str]) -> list[str]:
    """In the order given: a fault's run stops at its tenth red case, so its first area is the one that must see it."""
    return [str(settings.CASES_DIR / path) for area in areas for path in AREAS[area]]


def _pytest_command(areas: list[str], report_dir: Path, temp: str, target: str | None, control: bool) -> list[str]:
    command = [sys.executable, "-m", "pytest", *selection(areas), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--conformance-report", str(report_dir), "--basetemp", os.path.join(temp, "pytest")]
    if not control:
        command.append(f"--maxfail={MAX_RED}")
    if target:
        command += ["--conformance-dir", target]
    return command


def _ended(report: Report) -> str:
    """"" when every selected case ran to its end, else why not."""
    c = report.completeness
    if c.ended != FINISHED or c.unfinished or c.finished != c.collected:
        return c.text()
    return ""


def _stopped_at_max(outcome: Outcome) -> bool:
    c = outcome.report.completeness
    return c.ended == STOPPED and not c.unfinished and outcome.red >= MAX_RED


def run_one(name: str, fault: str | None, areas: list[str], library: Path, out: Path, target: str | None,
            procs: dict, stop: threading.Event) -> Outcome:
    report_dir = out / name
    report_dir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(name, areas)
    started = time.monotonic()
    # The run's own temporary directory (short: socket names are made in it), removed however the run ended; open to
    # every user as /tmp is, since cases reach into it from children that dropped root.
    temp = tempfile.mkdtemp(prefix="mutant-")
    os.chmod(temp, 0o1777)
    env = layer.environment(library, fault)
    env["TMPDIR"] = temp
    try:
        with open(report_dir / "output.txt", "wb") as log:
            with _starting:
                if stop.is_set():
                    outcome.problem = "not started: the run was stopped"
                    return outcome
                process = subprocess.Popen(_pytest_command(areas, report_dir, temp, target, fault is None), stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                           start_new_session=True)
                procs[name] = process
            try:
                outcome.status = process.wait(timeout=deadline(RUN_DEADLINE))
            except subprocess.TimeoutExpired:
                _kill(process)
                outcome.problem = f"did not end within {deadline(RUN_DEADLINE):g} s and was killed"
            finally:
                procs.pop(name, None)
                if process.poll() is None:
                    _kill(process)  # interrupted while waiting: the run goes before its directory does
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    outcome.seconds = time.monotonic() - started
    reports = sorted(report_dir.glob("*.json"))
    if outcome.problem:
        return outcome
    if not reports:
        outcome.problem = f"wrote no report (pytest exit status {outcome.status}; see {report_dir / 'output.txt'})"
        return outcome
    try:
        outcome.report = read_report(reports[0])
    except ReportError as e:
        outcome.problem = f"its report cannot be read: {e}"
        return outcome
    outcome.cases = {case.id: case.outcome for case in outcome.report.cases}
    outcome.observations = outcome.report.observations()
    outcome.stopped_at_max = fault is not None and _stopped_at_max(outcome)
    outcome.problem = "" if outcome.stopped_at_max else _ended(outcome.report)
    return outcome


_starting = threading.Lock()  # a run starts wholly before, or not at all after, the stop


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def run_all(faults, library: Path, out: Path, workers: int, target: str | None,
            progress=None) -> tuple[Outcome, list[Outcome]]:
    """The control on every area the faults touch, then each fault on its own areas, `workers` runs at a time.
    Interrupted, every run still going is killed before this returns."""
    from .catalogue import areas_of

    procs: dict[str, subprocess.Popen] = {}
    stop = threading.Event()
    jobs = [(CONTROL, None, areas_of(faults))] + [(f.name, f.name, list(f.areas)) for f in faults]
    # The longest first, so that the last to finish is a short one.
    jobs.sort(key=lambda job: (job[0] != CONTROL, -len(job[2]), "lock_histories" not in job[2]))
    results: dict[str, Outcome] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [pool.submit(run_one, name, fault, areas, library, out, target, procs, stop)
                   for name, fault, areas in jobs]
        for future in as_completed(futures):
            result = future.result()
            results[result.name] = result
            if progress:
                progress(result, len(results), len(jobs))
    finally:
        with _starting:
            stop.set()
        for process in list(procs.values()):
            _kill(process)
        pool.shutdown(wait=True, cancel_futures=True)
    return results[CONTROL], [results[f.name] for f in faults]
