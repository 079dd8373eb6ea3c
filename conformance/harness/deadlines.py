"""Deadlines: how long the harness waits before it calls a process hung, stretched on a slow machine.

A deadline only bounds a hang: a case that finishes within it is unaffected by its length, so stretching
it changes no outcome, only how long a real hang takes to be reported. Under full emulation (a kernel booted
by virtme-ng without KVM) a fresh interpreter takes seconds to start, so the environment variable
CONFORMANCE_DEADLINE_SCALE (a positive number, default 1) multiplies every deadline; `conformance kernels`
sets it. A window that must pass *before* a case concludes something (a waiter "stays blocked") is not a
deadline and is never scaled.
"""

from __future__ import annotations

import math
import os

ENV = "CONFORMANCE_DEADLINE_SCALE"
MAXIMUM = 100.0  # beyond this a "deadline" is no longer a bound anyone waits for


class BadScale(ValueError):
    pass


def parse_scale(value: str | None) -> float:
    """The scale a value of CONFORMANCE_DEADLINE_SCALE asks for; BadScale with a one-line reason if unusable."""
    if value is None or value.strip() == "":
        return 1.0
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not (0 < scale <= MAXIMUM):  # also rejects NaN
        raise BadScale(f"{ENV}={value!r}: not a number above 0 and at most {MAXIMUM:g}")
    return scale


def scale() -> float:
    """The scale in force. An unusable value counts as 1 here; `conformance run` and the plugin refuse it first."""
    try:
        return parse_scale(os.environ.get(ENV))
    except BadScale:
        return 1.0


def deadline(seconds: float) -> float:
    return seconds * scale()


# How long the harness waits, unless a caller says otherwise, for a child to report or a barrier to be set: far
# beyond what any case needs, so only a hang reaches it.
DEFAULT_DEADLINE = deadline(10.0)
