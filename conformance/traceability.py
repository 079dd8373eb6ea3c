"""Which case checks each behaviour that the anchor suites check: conformance/traceability.toml, and its coverage.

The anchor suites are the tests this suite must find at least as much as: the kernel's selftests, FreeBSD's and XNU's
tests, LTP, fstests and CPython's. Every behaviour they check that belongs to this suite's subject is one entry of
the file, with the cases that cover it (`area/test_name`, or `area/test_name[params]` where `*` stands for any
text) or, instead, why it is out of scope. A self-test holds the file to the suite: every pattern names a case, and
every entry is mapped. A report says, per anchor, how the mapped behaviours fared in its run.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable

from .model import BEHAVIOUR_STATES, DEVIATION, FAILING, UNEXPECTED_PASS, UNSUPPORTED, AnchorCoverage, CaseResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9 and 3.10
    import tomli as tomllib

PATH = Path(__file__).with_name("traceability.toml")
FAILING_STATE, DEVIATING, CHECKED, UNSUPPORTED_HERE, NOT_RUN = BEHAVIOUR_STATES
_FIELDS = {"anchor", "at", "case", "behaviour", "cases", "out_of_scope"}


class TraceabilityError(ValueError):
    """The file is not a usable mapping; the message is one line naming the entry."""


@dataclass(frozen=True)
class Behaviour:
    anchor: str  # the anchor suite's file, as cited in the cases' refs
    at: str  # the version of the anchor that was read
    case: str  # the anchor's own name for its case
    behaviour: str
    cases: tuple[str, ...]  # patterns of the suite's case ids that check it
    out_of_scope: str = ""  # why no case does, when `cases` is empty


def _entry(index: int, raw: dict) -> Behaviour:
    where = f"{PATH.name}: behaviour {index + 1}"
    unknown = set(raw) - _FIELDS
    if unknown:
        raise TraceabilityError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("anchor", "at", "case", "behaviour"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise TraceabilityError(f"{where}: `{name}` must be a non-empty string")
    cases, why = raw.get("cases", []), raw.get("out_of_scope", "")
    if not isinstance(cases, list) or not all(isinstance(p, str) and p for p in cases):
        raise TraceabilityError(f"{where} ({raw['case']}): `cases` must be a list of case id patterns")
    if not isinstance(why, str) or bool(cases) == bool(why.strip()):
        raise TraceabilityError(f"{where} ({raw['case']}): give either `cases` or `out_of_scope`, not both or neither")
    return Behaviour(raw["anchor"], raw["at"], raw["case"], raw["behaviour"], tuple(cases), why)


def load(text: str | None = None) -> list[Behaviour]:
    """The entries of the file (or of `text`, for the self-tests), in file order."""
    try:
        data = tomllib.loads(PATH.read_text(encoding="utf-8") if text is None else text)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TraceabilityError(f"{PATH.name}: {e}") from None
    entries = data.get("behaviour")
    if not isinstance(entries, list) or not entries or set(data) != {"behaviour"}:
        raise TraceabilityError(f"{PATH.name}: expected [[behaviour]] entries and nothing else")
    return [_entry(index, raw) for index, raw in enumerate(entries)]


@cache
def _compiled(pattern: str) -> re.Pattern:
    body = ".*".join(re.escape(part) for part in pattern.split("*"))
    if "[" not in pattern:
        body += r"(\[.*\])?"  # a bare name stands for every parametrisation
    return re.compile(body)


def matches(pattern: str, case_id: str) -> bool:
    return _compiled(pattern).fullmatch(case_id) is not None


class _ByName:
    """Case ids grouped by `area/test_name`, so that a pattern naming its test outright is matched against that
    test's parametrisations only (a report holds over a thousand ids, the file hundreds of patterns)."""

    def __init__(self, case_ids: Iterable[str]) -> None:
        self.ids = list(case_ids)
        self.by_name: dict[str, list[str]] = {}
        for case_id in self.ids:
            self.by_name.setdefault(case_id.split("[", 1)[0], []).append(case_id)

    def matching(self, pattern: str) -> list[str]:
        name = pattern.split("[", 1)[0]
        candidates = self.ids if "*" in name else self.by_name.get(name, [])
        return [case_id for case_id in candidates if matches(pattern, case_id)]


def unknown_patterns(behaviours: Iterable[Behaviour], case_ids: Iterable[str]) -> list[str]:
    """`anchor case: pattern` for every pattern that names no case of the suite."""
    index = _ByName(case_ids)
    return [f"{b.anchor} {b.case}: {pattern}" for b in behaviours for pattern in b.cases if not index.matching(pattern)]


def state(outcomes: list[str]) -> str:
    """A behaviour's state in a run, from its cases' outcomes: the worst of them decides."""
    if not outcomes:
        return NOT_RUN
    if any(outcome in FAILING for outcome in outcomes):
        return FAILING_STATE
    if any(outcome in (DEVIATION, UNEXPECTED_PASS) for outcome in outcomes):
        return DEVIATING
    if all(outcome == UNSUPPORTED for outcome in outcomes):
        return UNSUPPORTED_HERE
    return CHECKED


def coverage(cases: Iterable[CaseResult], behaviours: list[Behaviour] | None = None) -> list[AnchorCoverage]:
    """Per anchor, in file order: its behaviours, those out of scope, and the mapped ones' states in this run."""
    outcomes = {case.id: case.outcome for case in cases}
    index = _ByName(outcomes)
    found: dict[str, AnchorCoverage] = {}
    for behaviour in load() if behaviours is None else behaviours:
        entry = found.setdefault(behaviour.anchor, AnchorCoverage(behaviour.anchor, 0, 0, {}))
        entry.behaviours += 1
        if not behaviour.cases:
            entry.out_of_scope += 1
            continue
        matched = {case_id for pattern in behaviour.cases for case_id in index.matching(pattern)}
        seen = state([outcomes[case_id] for case_id in matched])
        entry.states[seen] = entry.states.get(seen, 0) + 1
    return list(found.values())
