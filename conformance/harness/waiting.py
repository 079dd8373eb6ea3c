"""Waiting for a descriptor to turn readable, whatever its number."""

from __future__ import annotations

import math
import select


def readable(fd: int, timeout: float) -> bool:
    """Whether fd is readable (data, end of file or an error) within timeout seconds. Through poll() where there is
    one: select() refuses descriptors from FD_SETSIZE (1024) up, which a process holding many sockets reaches."""
    if not hasattr(select, "poll"):
        return bool(select.select([fd], [], [], max(timeout, 0))[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(math.ceil(max(timeout, 0) * 1000)))
