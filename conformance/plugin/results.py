"""Where a case ran (a pytest-xdist worker or the only process): each phase's outcome, classified, rides in its test
report's user_properties to the collector (model.Phase). A documented deviation is shown by pytest as an xfail, so that
CI stays green; an unexpected pass as an xpass, or as a failure under --conformance-strict."""

from __future__ import annotations

import pytest

from ..model import DEVIATION, UNEXPECTED_PASS, Expectation, Phase
from .classify import Verdict, apply_deviation, classify
from .collection import collection_to_send
from .identity import case_id, is_case, references
from .options import EXPECTATIONS


def _skip_reason(rep: pytest.TestReport) -> str:
    if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
        return str(rep.longrepr[2]).removeprefix("Skipped: ").removeprefix("unsupported: ")
    return "skipped"


def _show_in_pytest(rep: pytest.TestReport, verdict: Verdict, deviation, strict: bool) -> None:
    """How pytest itself reports a deviation or an unexpected pass."""
    if verdict.outcome == DEVIATION:
        rep.outcome, rep.wasxfail = "skipped", f"deviation: {deviation.reason}"
    elif verdict.outcome == UNEXPECTED_PASS:
        if strict:
            rep.outcome, rep.longrepr = "failed", f"[unexpected-pass] {verdict.reason} ({deviation.source})"
        else:
            rep.wasxfail = f"deviation: {deviation.reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    if not is_case(item):
        return  # another project's test keeps its report as pytest made it
    collection = collection_to_send(item.config)
    if collection is not None:
        rep.user_properties.append(collection)
    cid = case_id(item)
    deviation = item.config.stash[EXPECTATIONS].lookup(cid)
    error = call.excinfo.value if call.excinfo else None
    verdict = classify(rep.when, rep.outcome, error, _skip_reason(rep))
    if rep.when == "call":
        verdict = apply_deviation(verdict, deviation)
        _show_in_pytest(rep, verdict, deviation, item.config.getoption("conformance_strict"))
    expectation = Expectation(DEVIATION, deviation.reason, deviation.references) if deviation else None
    phase = Phase(cid, verdict.outcome, verdict.reason, expectation,
                  tuple(references(item)) if rep.when == "setup" else None)
    rep.user_properties.extend(phase.properties())
