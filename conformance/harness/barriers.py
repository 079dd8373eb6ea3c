"""Pipe barriers: one process waits until another says go. No sleeps, and a deadline on every wait."""

from __future__ import annotations

import os
import select
import time

from .deadlines import deadline
from .errors import HarnessError

DEFAULT_WAIT = deadline(10.0)


class BarrierTimeout(HarnessError):
    pass


class BarrierBroken(HarnessError):
    pass


class Event:
    """A one-way signal over a pipe. Create it before fork; either side may set or wait.

    set() may carry a few bytes (an errno name, a count) that wait() returns.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()

    def set(self, data: bytes = b"!") -> None:
        if not data or len(data) > 255:
            raise ValueError("an event carries 1..255 bytes")
        os.write(self._w, bytes([len(data)]) + data)

    def wait(self, timeout: float = DEFAULT_WAIT) -> bytes:
        deadline = time.monotonic() + timeout  # one deadline for the header and the payload
        header = self._read_exact(1, deadline, timeout)
        return self._read_exact(header[0], deadline, timeout)

    def _read_exact(self, n: int, deadline: float, timeout: float) -> bytes:
        data = b""
        while len(data) < n:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._r], [], [], max(left, 0))
            if not ready:
                raise BarrierTimeout(f"no signal within {timeout:g}s")
            chunk = os.read(self._r, n - len(data))
            if not chunk:
                raise BarrierBroken("the other side closed the barrier")
            data += chunk
        return data

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._r = self._w = -1

    def __enter__(self) -> Event:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
