"""Results side by side: one column per report, run or iteration, one row per case and one per observation.

The one engine that compares outcomes: the matrix (a column per platform), the diff (old and new), the soak (a column
per run) and `--stress` (a column per iteration of the race-prone cases) all line their results up with it. A column
that did not run a case has no cell there (None, shown as "not run"); one that did not record an observation has
MISSING there; neither is ever taken for an outcome or a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..model import CaseResult
from .vocabulary import MISSING, NOT_RUN, observed_identity


@dataclass
class CaseRow:
    id: str
    area: str
    label: str
    cells: list[CaseResult | None]  # one per column; None where the column did not run the case

    @property
    def outcomes(self) -> list[str]:
        return [cell.outcome if cell else NOT_RUN for cell in self.cells]

    @property
    def differs(self) -> bool:
        """Not the same outcome in every column; a column that did not run the case differs from one that did."""
        return len(set(self.outcomes)) > 1

    def differing_from(self, index: int) -> list[int]:
        """The columns that ran the case with another outcome or other observations than column `index`."""
        first = self.cells[index]
        if first is None:
            return []
        return [i for i, cell in enumerate(self.cells) if cell is not None and not same_result(cell, first)]


@dataclass
class ObservationRow:
    key: str
    area: str  # the area of the case that recorded it
    values: list[Any]  # one per column; MISSING where the column did not record it

    @property
    def differs(self) -> bool:
        return len({observed_identity(value) for value in self.values}) > 1


@dataclass
class Lineup:
    width: int  # columns
    areas: dict[str, list[CaseRow]] = field(default_factory=dict)  # sorted by area, rows by case id
    observations: list[ObservationRow] = field(default_factory=list)  # sorted by key

    def rows(self) -> list[CaseRow]:
        return [row for rows in self.areas.values() for row in rows]


def same_result(a: CaseResult, b: CaseResult) -> bool:
    """The same outcome and the same observations, each value as the report wrote it."""
    if a.outcome != b.outcome or a.observations.keys() != b.observations.keys():
        return False
    return all(observed_identity(a.observations[key]) == observed_identity(b.observations[key])
               for key in a.observations)


def differing(rows: Iterable[CaseRow | ObservationRow]) -> int:
    """How many rows are not the same in every column."""
    return sum(1 for row in rows if row.differs)


def line_up(columns: Sequence[Iterable[CaseResult]]) -> Lineup:
    """Line up the cases of each column (at most one result per case id in a column)."""
    by_id = [{case.id: case for case in column} for column in columns]
    first: dict[str, CaseResult] = {}
    for cases in by_id:
        for case_id, case in cases.items():
            first.setdefault(case_id, case)
    lineup = Lineup(len(columns))
    areas: dict[str, list[CaseRow]] = {}
    owners: dict[str, str] = {}  # observation key -> area of the first case (by id) that recorded it
    for case_id in sorted(first):
        case = first[case_id]
        cells = [cases.get(case_id) for cases in by_id]
        areas.setdefault(case.area, []).append(CaseRow(case_id, case.area, case.label, cells))
        for cell in cells:
            for key in cell.observations if cell else ():
                owners.setdefault(key, case.area)
    lineup.areas = {area: areas[area] for area in sorted(areas)}
    values = [{key: value for case in cases.values() for key, value in case.observations.items()} for cases in by_id]
    lineup.observations = [ObservationRow(key, owners[key], [seen.get(key, MISSING) for seen in values])
                           for key in sorted(owners)]
    return lineup
