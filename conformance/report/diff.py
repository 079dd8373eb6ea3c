"""What changed between two reports of a platform: the regression check.

These are regressions, each a class of its own (REGRESSION_KINDS, and the run's own problems):
- a case that ran in both reports and went from any other outcome to fail or error;
- a new case that fails or errors;
- a case of the old report that the new one lacks (vanished);
- the new report itself: incomplete (interrupted, stopped early, a case that did not finish, a selection of the
  suite), or a run that exited with a status no failing case explains (an interrupt, an internal or usage error).
``allow_selection`` accepts a new report that is a selection on purpose (`-k`, `-m`, named tests): the cases it did
not select are not vanished but not compared, and its selection is not incompleteness; an interrupted or stopped run,
or a case that did not finish, still is. A documented deviation that no longer occurs arrives as unexpected-pass (the
plugin decides that) and is listed on its own, not as a regression. With ``observations_regress``, a changed or
vanished observation also counts; measurements (``perf.*``) never do, since they vary from run to run. The two reports
are lined up as two columns (report.lineup), as the matrix lines up platforms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import FAILING, FINISHED, MEASUREMENT_AREA, UNEXPECTED_PASS, Report
from .lineup import line_up
from .vocabulary import MISSING, value_text

MEASUREMENT_PREFIXES = (MEASUREMENT_AREA + ".",)

# Display order and headings of the kinds of case change.
CASE_KINDS = {
    "regression": "regressions (a case now fails or errors)",
    "new-failing": "new cases that fail or error (regressions)",
    "vanished": "vanished cases (regressions)",
    UNEXPECTED_PASS: "unexpected passes (a documented deviation no longer occurs)",
    "fixed": "fixed (fail or error became something else)",
    "changed": "other outcome changes",
    "new": "new cases",
    "not-selected": "cases the new report did not select (not compared: --allow-selection)",
}
REGRESSION_KINDS = ("regression", "new-failing", "vanished")
# Exit statuses a run may end with when its report is all there is to judge: 0, and 1 for the failing cases the
# report lists. Any other (an interrupt, pytest's internal or usage errors) is a problem of the run itself.
EXPLAINED_EXIT_STATUSES = (0, 1)
OBSERVATION_KINDS = {
    "changed": "observation changes",
    "abi": "observation changes the data model explains (another architecture; never regressions)",
    "new": "new observations",
    "vanished": "vanished observations",
    "measurement": "measurements (never regressions)",
}


@dataclass
class CaseChange:
    id: str
    kind: str
    old: str | None  # outcome; None when the case is new
    new: str | None  # outcome; None when the case vanished
    reason: str = ""  # the new report's reason, or the old one's for a vanished case


@dataclass
class ObservationChange:
    key: str
    kind: str
    old: Any = MISSING
    new: Any = MISSING
    explanation: str = ""  # why it differs by design, with the references


@dataclass
class ReportDiff:
    old: Report
    new: Report
    observations_regress: bool = False
    allow_selection: bool = False
    platform: list[tuple[str, str, str]] = field(default_factory=list)
    capabilities: list[tuple[str, str, str]] = field(default_factory=list)
    cases: list[CaseChange] = field(default_factory=list)
    observations: list[ObservationChange] = field(default_factory=list)
    run: list[str] = field(default_factory=list)  # what is wrong with the new run itself, one sentence each

    def regressions(self) -> list[str]:
        """Case ids, observation keys and problems of the new run that make the diff fail."""
        found = [change.id for change in self.cases if change.kind in REGRESSION_KINDS]
        if self.observations_regress:
            found += [c.key for c in self.observations if c.kind in ("changed", "vanished")]
        return found + self.run

    @property
    def exit_status(self) -> int:
        return 1 if self.regressions() else 0

    def empty(self) -> bool:
        return not (self.platform or self.capabilities or self.cases or self.observations or self.run)

    def counted(self) -> dict[str, int]:
        """How many regressions of each class: case kinds, observations, and the new run's own problems."""
        counts = {kind: sum(1 for change in self.cases if change.kind == kind) for kind in REGRESSION_KINDS}
        if self.observations_regress:
            counts["observation"] = sum(1 for c in self.observations if c.kind in ("changed", "vanished"))
        counts["run"] = len(self.run)
        return {kind: number for kind, number in counts.items() if number}


def run_problems(new: Report, allow_selection: bool) -> list[str]:
    completeness = new.completeness
    problems = []
    narrowed_on_purpose = allow_selection and completeness.ended == FINISHED and not completeness.unfinished \
        and completeness.finished == completeness.collected
    if not completeness.complete and not narrowed_on_purpose:
        problems.append(f"the new report is {completeness.text()}")
    status = new.run.exit_status
    if status not in EXPLAINED_EXIT_STATUSES and completeness.ended == FINISHED:
        problems.append(f"the new run exited with status {status}")
    return problems


def _case_kind(old: str, new: str) -> str:
    if new in FAILING and old not in FAILING:
        return "regression"
    if new == UNEXPECTED_PASS:
        return UNEXPECTED_PASS
    if old in FAILING and new not in FAILING:
        return "fixed"
    return "changed"


def _platform_facts(report: Report) -> dict[str, str]:
    platform = report.platform
    return {
        "id": platform.id,
        "os": platform.os,
        "release": platform.release,
        "kernel": platform.kernel,
        "arch": platform.arch,
        "libc": platform.libc,
        "python": platform.python,
        "filesystem": platform.filesystem_type,
        "privileged": value_text(platform.privileged),
        "uid": value_text(platform.uid),
        "suite": f"{report.suite.version} {report.suite.commit or ''}".strip(),
    }


def _capability(probe) -> str:
    if probe is None:
        return "not probed"
    return "supported" if probe.supported else "unsupported"


def _abi_dependences(old: Report, new: Report):
    """key -> the [[abi]] entry of the new report's OS that explains a change of that observation, when the two
    reports are of one OS on different architectures; else always None."""
    if old.platform.os != new.platform.os or old.platform.arch == new.platform.arch:
        return lambda key: None
    from ..expectations import load

    return load(new.platform.os).abi_dependence


def diff_reports(old: Report, new: Report, observations_regress: bool = False,
                 allow_selection: bool = False) -> ReportDiff:
    """Compare two reports."""
    result = ReportDiff(old, new, observations_regress, allow_selection)
    result.run = run_problems(new, allow_selection)
    selected = allow_selection and bool(new.completeness.selection)
    old_facts, new_facts = _platform_facts(old), _platform_facts(new)
    result.platform = [(name, old_facts[name], new_facts[name]) for name in old_facts
                       if old_facts[name] != new_facts[name]]
    old_caps, new_caps = old.platform.capabilities, new.platform.capabilities
    for name in sorted(set(old_caps) | set(new_caps)):
        before, after = _capability(old_caps.get(name)), _capability(new_caps.get(name))
        if before != after:
            result.capabilities.append((name, before, after))

    lineup = line_up([old.cases, new.cases])
    for row in lineup.rows():
        before, after = row.cells
        if before is None:
            kind = "new-failing" if after.outcome in FAILING else "new"
            result.cases.append(CaseChange(row.id, kind, None, after.outcome, after.reason))
        elif after is None:
            kind = "not-selected" if selected else "vanished"
            result.cases.append(CaseChange(row.id, kind, before.outcome, None, before.reason))
        elif row.differs:
            kind = _case_kind(before.outcome, after.outcome)
            result.cases.append(CaseChange(row.id, kind, before.outcome, after.outcome, after.reason))
    order = list(CASE_KINDS)
    result.cases.sort(key=lambda change: (order.index(change.kind), change.id))

    abi = _abi_dependences(old, new)
    for row in lineup.observations:
        if not row.differs:
            continue
        before, after = row.values
        explanation = ""
        if row.key.startswith(MEASUREMENT_PREFIXES):
            kind = "measurement"
        else:
            kind = "new" if before is MISSING else "vanished" if after is MISSING else "changed"
            entry = abi(row.key) if kind == "changed" else None
            if entry is not None:
                kind, explanation = "abi", f"{entry.reason} ({'; '.join(entry.references)})"
        result.observations.append(ObservationChange(row.key, kind, before, after, explanation))
    kinds = list(OBSERVATION_KINDS)
    result.observations.sort(key=lambda change: (kinds.index(change.kind), change.key))
    return result
