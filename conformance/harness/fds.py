"""Listing this process's open descriptors, portably."""

from __future__ import annotations

import os
import resource
import stat

from ..platforms import constants

# Brute force is the fallback when no fd directory can be trusted; cap it so a huge RLIMIT_NOFILE stays cheap.
_SCAN_CAP = 4096


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


_TRUSTED: dict[str, bool] = {}


def _listed() -> list[int]:
    path = constants().FD_DIR
    if path not in _TRUSTED:
        _TRUSTED[path] = _fd_dir_trusted(path)
    if _TRUSTED[path]:
        return [int(name) for name in os.listdir(path) if name.isdigit()]
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = _SCAN_CAP if soft in (resource.RLIM_INFINITY,) or soft > _SCAN_CAP else soft
    return list(range(limit))


def identity(fd: int) -> tuple[int, int, int] | None:
    """(device, inode, file type) of an open descriptor, or None if it is not open."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode)


def open_fds() -> dict[int, tuple[int, int, int]]:
    """Every open descriptor with its identity (the listing's own directory descriptor is gone by now)."""
    found = {}
    for fd in _listed():
        ident = identity(fd)
        if ident is not None:
            found[fd] = ident
    return found


def describe(fd: int) -> str:
    """A short human description of a descriptor for error messages."""
    target = ""
    path = constants().FD_DIR
    if path and path.startswith("/proc"):
        try:
            target = os.readlink(f"{path}/{fd}")
        except OSError:
            pass
    ident = identity(fd)
    kind = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFIFO: "pipe", stat.S_IFSOCK: "socket",
            stat.S_IFCHR: "chardev"}.get(ident[2], "other") if ident else "closed"
    return f"fd {fd} ({kind}{' ' + target if target else ''})"


def is_cloexec(fd: int) -> bool:
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
