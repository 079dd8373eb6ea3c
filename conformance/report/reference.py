"""Which committed report a fresh one is checked against: the reference of its platform family.

A report's platform id names the kernel's exact build, which changes with every kernel or runner image update; a
reference is chosen by what must be the same for the two reports to be comparable at all (Platform.family: the OS,
the architecture, root or not, and the filesystem under test), and the releases (kernel, libc, Python) become facts
the diff compares. Among several references of one family the closest wins: the same release first, then the same
Python, then the newest run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..model import FAILING, Report
from .diff import ReportDiff, diff_reports, run_problems
from .load import ReportError, read_report


def family_text(report: Report) -> str:
    return " ".join(report.platform.family)


def choose(report: Report, candidates: list[tuple[str, Report]]) -> tuple[str, Report] | None:
    """The candidate (source, report) that `report` is checked against, or None when none is of its family."""
    same_family = [pair for pair in candidates if pair[1].platform.family == report.platform.family]
    if not same_family:
        return None

    def closeness(pair: tuple[str, Report]):
        candidate = pair[1].platform
        return (candidate.release == report.platform.release, candidate.python == report.platform.python,
                pair[1].run.started, pair[0])

    return max(same_family, key=closeness)


def references_in(directory: Path) -> list[tuple[str, Report]]:
    """Every complete report directly in `directory` (not below it), by file name order; a file that is not a
    usable report is an error, as everywhere."""
    if not directory.is_dir():
        raise ReportError(f"{directory}: not a directory of reference reports")
    found = []
    for path in sorted(directory.glob("*.json")):
        report = read_report(path)
        if report.complete:
            found.append((str(path), report))
    return found


@dataclass
class Verdict:
    """What the project's test command concludes from a fresh report of the whole suite.

    With a reference of its family, the regressions the diff names: a `fail` the reference also records (with its
    evidence in the reason) is no news, a new one is. Without one, nothing vouches for any failing case, so each is
    new; in both, a report that is not the whole truth of its run is a problem of its own.
    """

    source: str | None  # the reference it was checked against; None when this family has none
    problems: list[str]
    diff: ReportDiff | None = None

    @property
    def clean(self) -> bool:
        return not self.problems


def judge(fresh: Report, candidates: list[tuple[str, Report]]) -> Verdict:
    chosen = choose(fresh, candidates)
    if chosen is not None:
        source, old = chosen
        diff = diff_reports(old, fresh)
        return Verdict(source, diff.regressions(), diff)
    failing = [f"{case.id}: {case.outcome} (no reference of the family {family_text(fresh)} records it)"
               for case in fresh.cases if case.outcome in FAILING]
    return Verdict(None, run_problems(fresh, allow_selection=False) + failing)
