"""This process's open descriptors, each OS's way: which numbers to look at, and what one refers to."""

from __future__ import annotations

import os
import resource

from . import constants

# Brute force is the fallback when no fd directory can be trusted; cap it so a huge RLIMIT_NOFILE stays cheap.
_SCAN_CAP = 4096

_TRUSTED: dict[str, bool] = {}  # fd directory -> whether it lists every descriptor (asked once per process)


def _fd_dir_trusted(path: str | None) -> bool:
    """A /dev/fd that shows only 0-2 (FreeBSD without fdescfs) lies; check it shows a fresh descriptor."""
    if not path or not os.path.isdir(path):
        return False
    probe = os.open(os.devnull, os.O_RDONLY)
    if probe < 3:  # 0-2 (a closed stdin, say) are the very numbers a bare FreeBSD /dev/fd lists (fdescfs(5))
        import fcntl

        high = fcntl.fcntl(probe, fcntl.F_DUPFD, 3)
        os.close(probe)
        probe = high
    try:
        return str(probe) in os.listdir(path)
    finally:
        os.close(probe)


def candidates() -> list[int]:
    """Every number that may be an open descriptor: what the OS's fd directory lists where it can be trusted, else
    every number below the open-file limit (capped). The listing's own directory descriptor is closed by now."""
    path = constants().FD_DIR
    if path not in _TRUSTED:
        _TRUSTED[path] = _fd_dir_trusted(path)
    if _TRUSTED[path]:
        return [int(name) for name in os.listdir(path) if name.isdigit()]
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = _SCAN_CAP if soft in (resource.RLIM_INFINITY,) or soft > _SCAN_CAP else soft
    return list(range(limit))


def target(fd: int) -> str:
    """What the descriptor refers to, as the OS's descriptor links name it; "" where it has none to read."""
    links = constants().FD_LINKS
    if not links:
        return ""
    try:
        return os.readlink(f"{links}/{fd}")
    except OSError:
        return ""
