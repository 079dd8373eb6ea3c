"""Pipe barriers: one process waits until another says go. No sleeps, and a deadline on every wait."""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING

from .deadlines import DEFAULT_DEADLINE
from .errors import HarnessError

if TYPE_CHECKING:
    from .children import Child

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

    def wait(self, timeout: float = DEFAULT_DEADLINE, peer: Child | None = None) -> bytes:
        """The payload of the next set(); BarrierTimeout after timeout seconds.

        peer: the Child that is to set this event. Both processes hold the write end (the event is made before the
        fork), so a peer that dies never shows here as end-of-file, and the wait would only end at its deadline as
        a BarrierTimeout that hides the death; given the peer, the wait also watches its report pipe and raises
        BarrierBroken as soon as the peer has ended without signalling.
        """
        deadline = time.monotonic() + timeout  # one deadline for the header and the payload
        header = self._read_exact(1, deadline, timeout, peer)
        return self._read_exact(header[0], deadline, timeout, peer)

    def _read_exact(self, n: int, deadline: float, timeout: float, peer: Child | None) -> bytes:
        data = b""
        while len(data) < n:
            left = deadline - time.monotonic()
            watched = [self._r] if peer is None else [self._r, peer]  # a Child selects on its report pipe
            ready, _, _ = select.select(watched, [], [], max(left, 0))
            if not ready:
                raise BarrierTimeout(f"no signal within {timeout:g}s")
            if self._r not in ready:  # the signal, written before the peer's report and exit, wins a tie
                raise BarrierBroken(f"child {peer.pid} ended without signalling")
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
