"""Many platforms' reports side by side: cases × platforms, then observations × platforms.

The model only lines reports up; ``matrix_markdown`` and ``matrix_html`` draw it. A platform that did not
run a case has no cell (``None``), drawn as "not run", never as an outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .markdown import case_label, libc_text, python_text, value_text

NOT_RUN = "not-run"


class _Missing:
    """An observation a platform did not record (distinct from a recorded null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class Column:
    """One platform: its report's facts, summary and the file it came from."""

    source: str
    report: dict

    @property
    def platform(self) -> dict:
        return self.report["platform"]

    @property
    def id(self) -> str:
        return self.platform["id"]

    def facts(self) -> list[tuple[str, str]]:
        """(label, plain text) rows for the platform table; callers escape them."""
        platform = self.platform
        return [
            ("OS", f"{platform['os']} {platform['release']}"),
            ("Kernel", platform["kernel"]),
            ("Architecture", platform["arch"]),
            ("libc", libc_text(platform)),
            ("Python", python_text(platform)),
            ("Filesystem", f"{platform['filesystem']['type']} at {platform['filesystem']['path']}"),
            ("Privilege", privilege(platform)),
            ("Cases", str(len(self.report["cases"]))),
        ]


def count(number: int, noun: str) -> str:
    """"1 case", "2 cases": the counts on the matrix pages."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def differing(rows: list) -> int:
    """How many case or observation rows are not the same on every platform."""
    return sum(1 for row in rows if row.differs)


def privilege(platform: dict) -> str:
    return f"{'root' if platform['privileged'] else 'unprivileged'} (uid {value_text(platform['uid'])})"


@dataclass
class CaseRow:
    id: str
    area: str
    label: str
    cells: list[dict | None]

    @property
    def outcomes(self) -> list[str]:
        return [cell["outcome"] if cell else NOT_RUN for cell in self.cells]

    @property
    def differs(self) -> bool:
        return len(set(self.outcomes)) > 1


@dataclass
class ObservationRow:
    key: str
    area: str
    values: list[Any]  # MISSING where the platform did not record it

    @property
    def differs(self) -> bool:
        return len({observed_identity(value) for value in self.values}) > 1


def observed_identity(value: Any) -> str:
    """An observed value as the report wrote it, so that 1 and true, 1 and 1.0, 0.0 and -0.0 stay distinct."""
    return "\0missing" if value is MISSING else f"{type(value).__name__}:{value_text(value)}"


@dataclass
class Matrix:
    columns: list[Column]
    areas: dict[str, list[CaseRow]] = field(default_factory=dict)
    observations: list[ObservationRow] = field(default_factory=list)

    def rows(self) -> list[CaseRow]:
        return [row for rows in self.areas.values() for row in rows]


def build_matrix(reports: list[tuple[str, dict]]) -> Matrix:
    """Line up reports (``(source, report)`` pairs, already validated, distinct platform ids)."""
    columns = [Column(source, report) for source, report in reports]
    by_id: list[dict[str, dict]] = [{case["id"]: case for case in column.report["cases"]} for column in columns]
    first: dict[str, dict] = {}
    for cases in by_id:
        for case_id, case in cases.items():
            first.setdefault(case_id, case)
    matrix = Matrix(columns)
    for case_id in sorted(first):
        case = first[case_id]
        row = CaseRow(case_id, case["area"], case_label(case), [cases.get(case_id) for cases in by_id])
        matrix.areas.setdefault(case["area"], []).append(row)
    matrix.areas = {area: matrix.areas[area] for area in sorted(matrix.areas)}

    # An observation belongs to the area of the case that recorded it.
    owners: dict[str, str] = {}
    for case_id in sorted(first):
        for key in (k for cases in by_id if case_id in cases for k in cases[case_id]["observations"]):
            owners.setdefault(key, first[case_id]["area"])
    values = [
        {key: value for case in column.report["cases"] for key, value in case["observations"].items()}
        for column in columns
    ]
    matrix.observations = [
        ObservationRow(key, owners[key], [observed.get(key, MISSING) for observed in values]) for key in sorted(owners)
    ]
    return matrix


MATRIX_FORMAT_VERSION = 1


def matrix_document(matrix: Matrix) -> dict:
    """The matrix as plain JSON data; a platform that did not run a case or record a key is left out."""
    ids = [column.id for column in matrix.columns]
    return {
        "matrix_format_version": MATRIX_FORMAT_VERSION,
        "platforms": [
            {"source": column.source, "summary": column.report["summary"], **column.platform}
            for column in matrix.columns
        ],
        "cases": [
            {
                "id": row.id,
                "area": row.area,
                "outcomes": {pid: cell["outcome"] for pid, cell in zip(ids, row.cells) if cell},
                "differs": row.differs,
            }
            for row in matrix.rows()
        ],
        "observations": [
            {
                "key": row.key,
                "values": {pid: value for pid, value in zip(ids, row.values) if value is not MISSING},
                "differs": row.differs,
            }
            for row in matrix.observations
        ],
    }
