"""Which committed report a fresh one is checked against: the reference of its platform family.

A report's platform id names the kernel's exact build, which changes with every kernel or runner image update; a
reference is chosen by what must be the same for the two reports to be comparable at all (Platform.family: the OS,
the architecture, root or not, and the filesystem under test), and the releases (kernel, libc, Python) become facts
the diff compares. Among several references of one family the closest wins: the same release first, then the same
Python, then the newest run.
"""

from __future__ import annotations

from pathlib import Path

from ..model import Report
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
