"""Listing this process's open descriptors, portably (the OS's own ways are in platforms.descriptors)."""

from __future__ import annotations

import os
import stat

from ..platforms import descriptors


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
    for fd in descriptors.candidates():
        ident = identity(fd)
        if ident is not None:
            found[fd] = ident
    return found


def describe(fd: int) -> str:
    """A short human description of a descriptor for error messages."""
    target = descriptors.target(fd)
    ident = identity(fd)
    kind = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFIFO: "pipe", stat.S_IFSOCK: "socket",
            stat.S_IFCHR: "chardev"}.get(ident[2], "other") if ident else "closed"
    return f"fd {fd} ({kind}{' ' + target if target else ''})"


def is_cloexec(fd: int) -> bool:
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
