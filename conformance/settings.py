"""The settings of a run that several entry points share (`conformance run`, `conformance bench`, the pytest plugin),
each defined once, and the one place that checks them: a bad value is one line naming what to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from .harness import deadlines

CASES_DIR = Path(__file__).resolve().parent / "cases"
DEFAULT_REPORT_DIR = "reports/runs"
TARGET_DIR_VARIABLE = "CONFORMANCE_DIR"  # the filesystem under test, for CI jobs that cannot pass --dir

# The backstop (pytest-timeout, signal method) for a case that hangs despite the harness's own deadlines: the
# exception unwinds through the case, whose context managers kill and reap its children. Stretched like every
# deadline by CONFORMANCE_DEADLINE_SCALE.
CASE_TIMEOUT = 120.0
CASE_TIMEOUT_METHOD = "signal"


class BadSetting(ValueError):
    """A setting that cannot be used; the message is one line naming it."""


def deadline_scale() -> float:
    """CONFORMANCE_DEADLINE_SCALE, checked."""
    try:
        return deadlines.parse_scale(os.environ.get(deadlines.ENV))
    except deadlines.BadScale as e:
        raise BadSetting(str(e)) from None


def case_timeout() -> float:
    return CASE_TIMEOUT * deadline_scale()


def target_dir(path: str | None, option: str) -> str | None:
    """The directory of the filesystem under test, resolved; None when none was given. `option` names where the
    value came from, for the message."""
    if path is None:
        return None
    if not os.path.isdir(path):
        raise BadSetting(f"{option} {path}: not a directory")
    return os.path.realpath(path)
