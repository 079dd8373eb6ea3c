"""The outcome model and the exceptions that select an outcome.

pass            the platform does what the reference says
fail            it does not (an AssertionError, or any exception that is not the harness's own)
deviation       it does not, and the platform's expectation file documents why
unexpected-pass a documented deviation did not happen
unsupported     the mechanism does not exist here (raised as Unsupported with the probe's reason)
error           the harness broke: a HarnessError (child crashed or timed out, leak found), a timeout
"""

from __future__ import annotations

import pytest

from .harness.errors import HarnessError  # noqa: F401 (part of the outcome model)

OUTCOMES = ("pass", "fail", "deviation", "unexpected-pass", "unsupported", "error")


class Unsupported(pytest.skip.Exception):
    """The mechanism a case needs does not exist on this platform."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"unsupported: {reason}", allow_module_level=False)
        self.reason = reason


def unsupported(reason: str) -> Unsupported:
    return Unsupported(reason)


def require(name: str) -> None:
    """Make the case `unsupported`, with the capability probe's reason, when the mechanism is missing here."""
    from .platforms.probes import probe

    capability = probe(name)
    if not capability.supported:
        raise Unsupported(capability.reason)
