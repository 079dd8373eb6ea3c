"""Reading a file someone named on the command line, safely: only a regular file, never blocking, never unbounded.

A FIFO would block an ordinary open forever, /dev/zero would be read until memory runs out, and opening some devices
does something (a tape rewinds). So the path is stat'ed first and refused unless it is a regular file; it is then
opened non-blocking and checked again with fstat (it may have been replaced meanwhile), and never read past a limit.
"""

from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class FileProblem(Exception):
    """Why a file cannot be read; one line, without the path (the caller names it)."""


def _not_regular(mode: int) -> str:
    if stat.S_ISREG(mode):
        return ""
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return "is a directory, not a file" if stat.S_ISDIR(mode) else f"not a regular file: {kind}"


def open_regular(path: str | os.PathLike) -> int:
    """A descriptor open for reading on the regular file at ``path``; the caller closes it."""
    try:
        problem = _not_regular(os.stat(path).st_mode)
        if problem:
            raise FileProblem(problem)
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise FileProblem("no such file") from None
    except OSError as e:
        raise FileProblem(f"cannot read: {e.strerror or e}") from None
    except ValueError:
        raise FileProblem("not a usable path (it holds a NUL byte)") from None
    problem = _not_regular(os.fstat(fd).st_mode)
    if problem:
        os.close(fd)
        raise FileProblem(problem)
    return fd


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The contents of the regular file at ``path``, refused if it holds more than ``limit`` bytes."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise FileProblem(f"{size} bytes, more than the {_size_text(limit)} allowed")
        chunks, total = [], 0
        while total <= limit:  # the file may grow after fstat: read at most one byte past the limit
            chunk = os.read(fd, min(limit + 1 - total, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise FileProblem(f"more than the {_size_text(limit)} allowed")
        return b"".join(chunks)
    except OSError as e:
        raise FileProblem(f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def read_head(path: str | os.PathLike, size: int) -> bytes:
    """The first ``size`` bytes (fewer if the file is shorter) of the regular file at ``path``."""
    fd = open_regular(path)
    try:
        return os.pread(fd, size, 0)
    except OSError as e:
        raise FileProblem(f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _size_text(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and limit % (1 << 20) == 0 else f"{limit} bytes"
