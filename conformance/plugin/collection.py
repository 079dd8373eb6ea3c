"""What the collection of a run says before any case runs: every case is well formed, and which entries of the
expectation file match no collected case (they document a case the suite no longer has).

The entries are judged in the process that collects (each pytest-xdist worker collects the whole selection) before
-k or -m deselect anything, and only for areas the run collected: a run of one module says nothing about another's
entries. A run that names single tests (`file::test`) or repeats race-prone cases (--conformance-stress, whose ids
carry the iteration) judges none.
"""

from __future__ import annotations

import pytest

from ..model import UnmatchedDeviation
from .identity import case_id, case_parts, check_cases, is_case
from .options import EXPECTATIONS

UNMATCHED = pytest.StashKey["list[UnmatchedDeviation] | None"]()
WORKER_OUTPUT = "conformance_unmatched"  # where a pytest-xdist worker hands them to the controller


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
