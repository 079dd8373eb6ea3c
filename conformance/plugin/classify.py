"""A case's phase, classified: from how the phase ended (passed, skipped or failed, and the exception) to an outcome
and its reason, then what the platform's expectation file makes of that. Pure functions: no report is touched here.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import pytest

from ..expectations import Deviation
from ..harness.errors import HarnessError
from ..model import DEVIATION, ERROR, FAIL, PASS, UNEXPECTED_PASS, UNSUPPORTED
from ..outcomes import MissingMechanism, Unsupported


@dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str = ""


def _innermost_function(error: BaseException) -> tuple[str, str]:
    """(file name, function) where the exception was raised."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "", ""
    return os.path.basename(tb.tb_frame.f_code.co_filename), tb.tb_frame.f_code.co_name


def refused_resource(error: BaseException) -> str | None:
    """Why the system refused the case a thread or a process, if that is what the exception says; the case could
    not be carried out, whatever the platform does with descriptors and locks."""
    if isinstance(error, RuntimeError) and "can't start new thread" in str(error):
        return "the system refused a new thread (its limit on processes and threads, RLIMIT_NPROC, or memory)"
    if isinstance(error, OSError) and error.errno == errno.EAGAIN \
            and _innermost_function(error) in (("subprocess.py", "_execute_child"), ("subprocess.py", "_fork_exec")):
        return "the system refused a new process: fork EAGAIN (RLIMIT_NPROC, the pid or memory limits)"
    return None


def _timeout(error: BaseException) -> bool:
    # pytest-timeout ends an overrunning test with pytest.fail("Timeout ...").
    return isinstance(error, pytest.fail.Exception) and str(error).startswith("Timeout")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    name = type(error).__name__
    if not text:
        return name
    first = text.splitlines()[0]
    if isinstance(error, (AssertionError, HarnessError)):
        return first if len(text.splitlines()) == 1 else text[:2000]
    return f"{name}: {first}"


def classify(when: str, status: str, error: BaseException | None, skip_reason: str = "skipped") -> Verdict:
    """The outcome of one phase (`when`: setup, call or teardown) that ended `status` (passed, skipped or failed),
    raising `error` (None when it did not raise); `skip_reason` is what pytest says of a skip.

    An AssertionError, or any exception the case did not expect, is a `fail` in the call; only the harness's own
    exceptions, pytest-timeout's expiry and the system's refusal of a thread or a process are `error`, as is anything
    that breaks setup or teardown, except a mechanism the OS always has found missing (MissingMechanism): a `fail`.
    """
    if status == "passed":
        return Verdict(PASS)
    if status == "skipped":
        return Verdict(UNSUPPORTED, error.reason if isinstance(error, Unsupported) else skip_reason)
    message = _first_line(error) if error is not None else "failed"
    refused = refused_resource(error) if error is not None else None
    if refused:
        return Verdict(ERROR, f"{refused}: {message}")
    if error is None or isinstance(error, HarnessError) or _timeout(error):
        return Verdict(ERROR, message)
    if when != "call" and not isinstance(error, MissingMechanism):  # a broken platform found in setup is a fail
        return Verdict(ERROR, f"{when} failed: {message}")
    return Verdict(FAIL, message)


def apply_deviation(verdict: Verdict, deviation: Deviation | None) -> Verdict:
    """A call phase's verdict where the expectation file documents a deviation: a fail it explains is a `deviation`,
    a pass means the documented deviation did not happen (`unexpected-pass`); anything else stands."""
    if deviation is None:
        return verdict
    if verdict.outcome == FAIL:
        return Verdict(DEVIATION, f"{deviation.reason} (observed: {verdict.reason})")
    if verdict.outcome == PASS:
        return Verdict(UNEXPECTED_PASS, f"documented deviation did not happen: {deviation.reason}")
    return verdict
