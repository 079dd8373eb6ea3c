"""Which tests are conformance cases, and what each is called in a report: `area/name[params]`."""

from __future__ import annotations

import re

import pytest

from ..model import case_id_of
from ..selection import AREA_VARIABLE

CASES_PACKAGE = "conformance.cases"
AREA_PATTERN = re.compile(r"[a-z0-9_]+")


def _declared_area(module) -> str | None:
    area = getattr(module, AREA_VARIABLE, None)
    return area if isinstance(area, str) else None


def is_case(item: pytest.Item) -> bool:
    """A test in CASES_PACKAGE, or in any module that declares its area with CONFORMANCE_AREA = "<area>"."""
    module = getattr(item, "module", None)
    if module is None:
        return False
    return module.__name__.startswith(CASES_PACKAGE + ".") or _declared_area(module) is not None


def case_parts(item: pytest.Item) -> tuple[str, str, str]:
    """(area, name, params): area from CONFORMANCE_AREA or the module test_<area>.py, params from the
    parametrisation id."""
    area = _declared_area(item.module)
    if area is None:
        area = item.module.__name__.rsplit(".", 1)[-1]
        area = area[len("test_"):] if area.startswith("test_") else area
    callspec = getattr(item, "callspec", None)
    return area, getattr(item, "originalname", item.name), callspec.id if callspec else ""


def case_id(item: pytest.Item) -> str:
    return case_id_of(*case_parts(item))


def references(item: pytest.Item) -> list[str]:
    """What the case's @pytest.mark.refs(...) name."""
    refs = []
    for mark in item.iter_markers("refs"):
        refs.extend(str(r) for r in mark.args)
    return refs


def check_cases(cases: list[pytest.Item]) -> None:
    """Every case has an area that can name it and at least one reference; a UsageError names those that do not."""
    bad_areas = sorted({area for area, _, _ in map(case_parts, cases) if not AREA_PATTERN.fullmatch(area)})
    if bad_areas:
        raise pytest.UsageError("conformance areas must be lower_case words: " + ", ".join(map(repr, bad_areas)))
    missing = [item.nodeid for item in cases if not references(item)]
    if missing:
        raise pytest.UsageError("conformance cases without @pytest.mark.refs(...): " + ", ".join(missing))
