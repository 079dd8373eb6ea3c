"""--conformance-stress N: run only the race-prone cases, each N times, within a time budget, and name every
iteration whose outcome or observations differ from the case's first iteration.

A race-prone case carries @pytest.mark.race("what races"): in-flight garbage collection, concurrent lockers, a
waiter racing the holder's exit, a send racing a close. Each becomes N cases with the parameter `stressK`; past
--conformance-stress-seconds the remaining iterations are skipped with that reason, so a run is bounded whatever N
is. The comparison runs where the reports arrive (the controller under pytest-xdist), so it sees every worker, and
lines the iterations up as the matrix lines up platforms (report.lineup, one column per iteration).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict

import pytest

from .model import CaseResult, read_phase, worst
from .report.lineup import Lineup, line_up

MARKER = "race"
PARAM = "conformance_stress_iteration"
_TOKEN = re.compile(r"(^|-)stress(\d+)(?=-|$)")


def iterations(config: pytest.Config) -> int:
    return config.getoption("conformance_stress") or 0


def base_id(case_id: str) -> tuple[str, int]:
    """('area/name[params]', K) from the case id of iteration K (the stressK parameter may sit anywhere)."""
    head, bracket, params = case_id.partition("[")
    match = _TOKEN.search(params[:-1]) if bracket else None
    if match is None:
        return case_id, 0
    rest = (params[:match.start()] + params[match.end():-1]).strip("-")
    return (f"{head}[{rest}]" if rest else head), int(match.group(2))


class Stress:
    def __init__(self, config: pytest.Config) -> None:
        self.count = iterations(config)
        self.budget = config.getoption("conformance_stress_seconds")
        self.start = time.monotonic()
        self.seen: dict = defaultdict(dict)  # base id -> iteration -> CaseResult of that iteration

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker(MARKER) is not None:
            metafunc.parametrize(PARAM, range(self.count), ids=[f"stress{i}" for i in range(self.count)])

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list) -> None:
        kept = [item for item in items if item.get_closest_marker(MARKER) is not None]
        dropped = [item for item in items if item.get_closest_marker(MARKER) is None]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if time.monotonic() - self.start > self.budget:
            pytest.skip(f"stress budget of {self.budget:g} s spent")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and "stress budget" in str(report.longrepr):
            return  # not run at all: nothing to compare
        phase = read_phase(report.user_properties)
        if phase is None:
            return
        base, index = base_id(phase.case_id)
        seen = self.seen[base].setdefault(index, CaseResult(base, phase.outcome))
        seen.outcome = worst((seen.outcome, phase.outcome))
        seen.observations.update({_strip(key): value for key, value in phase.observations.items()})

    def lineup(self) -> Lineup:
        """One column per iteration; an iteration that did not run (the budget was spent) has no cells."""
        return line_up([[runs[index] for runs in self.seen.values() if index in runs] for index in range(self.count)])

    def differing(self) -> dict:
        """base id -> [(iteration, its result)] for every iteration whose outcome or observations differ from the
        first iteration's."""
        found = {}
        for row in self.lineup().rows():
            changes = [(i, row.cells[i]) for i in row.differing_from(0)]
            if changes:
                found[row.id] = changes
        return found

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.differing() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a regression hunt that found one must say so

    def pytest_terminal_summary(self, terminalreporter) -> None:
        found = self.differing()
        ran = sum(len(runs) for runs in self.seen.values())
        terminalreporter.write_sep("=", f"stress: {len(self.seen)} race-prone cases, {ran} iterations in "
                                        f"{time.monotonic() - self.start:.1f} s, {len(found)} differing")
        for base, changes in sorted(found.items()):
            first = self.seen[base][0]
            for index, result in changes:
                terminalreporter.write_line(f"{base}: iteration {index}: {result.outcome} {result.observations} "
                                            f"(iteration 0: {first.outcome} {first.observations})")


def _strip(name: str) -> str:
    """An observation's name without the iteration: area.name[params] as the case would record it."""
    head, bracket, params = name.partition("[")
    if not bracket:
        return name
    rest = _TOKEN.sub("", params[:-1]).strip("-")
    return f"{head}[{rest}]" if rest else head
