"""Many platforms' reports side by side: cases × platforms, then observations × platforms.

The model only lines reports up (report.lineup, a column per platform); ``matrix_markdown`` and ``matrix_html`` draw
it. A platform that did not run a case has no cell, drawn as "not run", never as an outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Report
from .lineup import CaseRow, Lineup, ObservationRow, differing, line_up
from .vocabulary import MISSING, count, platform_rows


@dataclass
class Column:
    """One platform: its report and the file it came from."""

    source: str
    report: Report

    @property
    def id(self) -> str:
        return self.report.platform.id

    def facts(self) -> list[tuple[str, str]]:
        """(label, plain text) rows for the platform table; callers escape them."""
        return [*platform_rows(self.report.platform), ("Cases", str(len(self.report.cases)))]


@dataclass
class Matrix:
    columns: list[Column]
    lineup: Lineup

    @property
    def areas(self) -> dict[str, list[CaseRow]]:
        return self.lineup.areas

    @property
    def observations(self) -> list[ObservationRow]:
        return self.lineup.observations

    def rows(self) -> list[CaseRow]:
        return self.lineup.rows()

    def headline(self) -> str:
        """How many platforms and cases, and how many cases differ between the platforms."""
        rows = self.rows()
        return (f"{count(len(self.columns), 'platform')}, {count(len(rows), 'case')}, {differing(rows)} with "
                "different outcomes between platforms.")


def build_matrix(reports: list[tuple[str, Report]]) -> Matrix:
    """Line up reports (``(source, report)`` pairs, already validated, distinct platform ids)."""
    columns = [Column(source, report) for source, report in reports]
    return Matrix(columns, line_up([column.report.cases for column in columns]))


MATRIX_FORMAT_VERSION = 1


def matrix_document(matrix: Matrix) -> dict:
    """The matrix as plain JSON data; a platform that did not run a case or record a key is left out."""
    ids = [column.id for column in matrix.columns]
    return {
        "matrix_format_version": MATRIX_FORMAT_VERSION,
        "platforms": [
            {"source": column.source, "summary": column.report.summary, **column.report.platform.to_json()}
            for column in matrix.columns
        ],
        "cases": [
            {
                "id": row.id,
                "area": row.area,
                "outcomes": {pid: cell.outcome for pid, cell in zip(ids, row.cells) if cell},
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
