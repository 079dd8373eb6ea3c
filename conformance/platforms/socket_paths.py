"""Where a named AF_UNIX socket can go: a path short enough for this OS's sun_path."""

from __future__ import annotations

import os
import tempfile

from . import constants

# sun_path's size where the OS's is not recorded: "the size is typically in the range 92 to 108" (POSIX.1-2024 XBD
# <sys/un.h>, APPLICATION USAGE), so an OS the suite knows nothing of is given the smallest.
UNKNOWN_SUN_PATH_SIZE = 92

# Bytes of sun_path a socket path leaves unused. One is the terminating NUL: "the length of the pathname, including
# the terminating null byte, should not exceed the size of sun_path" (unix(7)), and CPython refuses a path that
# leaves no room for it (seen on Linux: 108 bytes refused, 107 taken). The other seven keep Linux's room at the 100
# bytes the suite has always given a socket path, so the same paths move to SHORT_TMP as before; the BSDs' and
# macOS's 104-byte sun_path leaves 96.
MARGIN = 8

# Where a socket goes when the run's temporary directory is too deep for sun_path (macOS's per-user $TMPDIR,
# /private/var/folders/xx/<28 characters>/T/, leaves little room): "/tmp: a directory made available for
# applications that need a place to create temporary files" on every conforming system (POSIX.1-2024 XBD 10.1).
SHORT_TMP = "/tmp"


def room() -> int:
    """How many bytes a socket's path may have here."""
    return (constants().SUN_PATH_SIZE or UNKNOWN_SUN_PATH_SIZE) - MARGIN


def fits(path: str) -> bool:
    return len(os.fsencode(path)) <= room()


def new_directory(name: str) -> tuple[str, str]:
    """A new empty directory, and the path of a socket `name` in it: in the run's temporary directory where that
    path fits, else in SHORT_TMP. The caller removes the directory, and checks with fits() that the path fits."""
    directory = tempfile.mkdtemp(prefix="s")
    path = os.path.join(directory, name)
    if not fits(path) and os.path.isdir(SHORT_TMP):
        os.rmdir(directory)
        directory = tempfile.mkdtemp(prefix="conformance-s", dir=SHORT_TMP)
        path = os.path.join(directory, name)
    return directory, path
