"""The exceptions a case raises to select its outcome (the outcomes themselves are conformance.model's).

Unsupported      the mechanism does not exist here (raised with the probe's reason): `unsupported`
MissingMechanism a mechanism the OS always has is missing (its probe failed): `fail`, even in setup
HarnessError     the harness broke (a child crashed or timed out, a leak was found): `error`
AssertionError, or any exception that is not the harness's own: `fail` (plugin/classify.py decides)
"""

from __future__ import annotations

import pytest

from .harness.errors import HarnessError  # noqa: F401 (part of the outcome model)


class Unsupported(pytest.skip.Exception):
    """The mechanism a case needs does not exist on this platform."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"unsupported: {reason}", allow_module_level=False)
        self.reason = reason


class MissingMechanism(AssertionError):
    """A mechanism this OS has in every release is missing: the platform is broken. A `fail` in whichever phase of
    the case asked for it (a fixture asks in setup), never a harness `error`."""


def unsupported(reason: str) -> Unsupported:
    return Unsupported(reason)


def require(name: str) -> None:
    """Make the case `unsupported`, with the capability probe's reason, when the mechanism is missing here; but
    fail it when this OS is known to have the mechanism in every release (platforms: ALWAYS_HAS), because then the
    probe found a broken platform, not a missing feature."""
    from .platforms import constants
    from .platforms.probes import probe

    capability = probe(name)
    if capability.supported:
        return
    source = constants().ALWAYS_HAS.get(name)
    if source is not None:
        raise MissingMechanism(f"{capability.reason}, but {constants().NAME} always has {name} ({source})")
    raise Unsupported(capability.reason)
