"""The one exception the reference code raises when a platform lacks a mechanism.

Cases turn it into the outcome `unsupported` with its reason (cases/_support.or_unsupported); the reference code
itself stays free of pytest so that it can be imported as a library.
"""

from __future__ import annotations


class Unavailable(Exception):
    """This platform has no such mechanism; `reason` says what is missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
