"""What the collection of a run says before any case runs: every case is well formed; which cases the run selected
and what narrowed it to part of the suite (model.Collection, sent to the collector on the first test report); and
which entries of the expectation file match no collected case (they document a case the suite no longer has).

The entries are judged in the process that collects (each pytest-xdist worker collects the whole selection) before
-k or -m deselect anything, and only for areas the run collected: a run of one module says nothing about another's
entries. A run that names single tests (`file::test`) or repeats race-prone cases (--conformance-stress, whose ids
carry the iteration) judges none.
"""

from __future__ import annotations

import os

import pytest

from .. import settings
from ..model import Collection, UnmatchedDeviation
from . import scope
from .identity import case_id, case_parts, check_cases, is_case
from .options import EXPECTATIONS

UNMATCHED = pytest.StashKey["list[UnmatchedDeviation] | None"]()
WORKER_OUTPUT = "conformance_unmatched"  # where a pytest-xdist worker hands them to the controller
COLLECTION = pytest.StashKey[Collection]()
DESELECTED = pytest.StashKey[int]()
SENT = pytest.StashKey[bool]()  # the collection rode on a test report already


def _judged(config: pytest.Config) -> bool:
    if config.getoption("conformance_stress"):
        return False
    return not any("::" in str(arg) for arg in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    cases = [item for item in items if is_case(item)]
    check_cases(cases)
    if not _judged(config):
        config.stash[UNMATCHED] = None
        return
    ids = [case_id(item) for item in cases]
    areas = {case_parts(item)[0] for item in cases}
    unmatched = [UnmatchedDeviation(entry.case, entry.reason, entry.source)
                 for entry in config.stash[EXPECTATIONS].unmatched(ids) if entry.case.partition("/")[0] in areas]
    config.stash[UNMATCHED] = unmatched
    if hasattr(config, "workeroutput"):
        config.workeroutput[WORKER_OUTPUT] = [entry.to_json() for entry in unmatched]


def unmatched_from_worker(node) -> list[UnmatchedDeviation] | None:
    """What a finished pytest-xdist worker found; None if it collected nothing or did not judge."""
    found = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    return None if found is None else [UnmatchedDeviation.from_json(entry) for entry in found]


def pytest_deselected(items: list) -> None:
    if items:
        config = items[0].config
        config.stash[DESELECTED] = config.stash.get(DESELECTED, 0) + len(items)


def _narrowing_arguments(config: pytest.Config) -> list[str]:
    """Collection arguments that name single tests, or files of the suite's own cases (not its whole directory)."""
    named = []
    for arg in config.args:
        path = str(arg).split("::")[0]
        inside = os.path.realpath(path).startswith(str(settings.CASES_DIR) + os.sep)
        if "::" in str(arg) or (inside and os.path.isfile(path)):
            named.append(str(arg))
    return named


def selection(config: pytest.Config) -> list[str]:
    """What narrowed this run to part of the suite, in words; [] for the whole suite."""
    reasons = []
    if config.getoption("keyword", None):
        reasons.append(f"-k {config.getoption('keyword')}")
    if config.getoption("markexpr", None):
        reasons.append(f"-m {config.getoption('markexpr')}")
    if config.getoption("conformance_stress"):
        reasons.append(f"--conformance-stress {config.getoption('conformance_stress')} (race-prone cases only)")
    named = _narrowing_arguments(config)
    if named:
        reasons.append("only " + ", ".join(named))
    deselected = config.stash.get(DESELECTED, 0)
    if deselected and not reasons:
        reasons.append(f"{deselected} tests deselected")
    return reasons


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    scope.mark_watched(config, session.items)
    cases = {item.nodeid: case_id(item) for item in session.items if is_case(item)}
    config.stash[COLLECTION] = Collection(cases, config.stash.get(DESELECTED, 0), selection(config))


def collection_to_send(config: pytest.Config):
    """The collection's test report property, once per process: on its first test report."""
    if config.stash.get(SENT, False) or COLLECTION not in config.stash:
        return None
    config.stash[SENT] = True
    return config.stash[COLLECTION].property()
