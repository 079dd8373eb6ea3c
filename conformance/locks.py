"""Lock operations for the three families, with the platform's own struct flock and command numbers.

- `posix`: classic POSIX record locks (F_GETLK/F_SETLK/F_SETLKW), owned by the process;
- `ofd`: open file description locks (F_OFD_GETLK/SETLK/SETLKW), owned by the description; the numbers come
  from Python's fcntl module, else from the platform module (macOS 90/91/92 even where Python lacks the names);
- `flock`: whole-file BSD locks, owned by the description.

`holder()` asks "who holds this range?" from a third process with a description of its own, so a case can check
a lock without disturbing it (a query from the holder's own process or description would see no conflict).
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import time
from dataclasses import dataclass

from .harness.children import DEFAULT_DEADLINE, run_in_child
from .platforms import constants, lookup
from .platforms.lock_table import waiters  # locks.waiters(path, pid): what the kernel lists, where it can
from .unavailable import Unavailable

FAMILIES = ("posix", "ofd", "flock")
KINDS = ("read", "write")


class LockFamilyUnavailable(Unavailable):
    """The platform lacks this family (FreeBSD has no OFD locks); `reason` says what is missing."""


@dataclass(frozen=True)
class Held:
    """A lock as F_GETLK reports it (or, for flock, only that something conflicts: kind None, pid None)."""

    kind: str | None
    start: int | None = None
    length: int | None = None
    pid: int | None = None


def _type_value(kind: str) -> int:
    name = {"read": "F_RDLCK", "write": "F_WRLCK", "unlock": "F_UNLCK"}[kind]
    value = lookup(name, fcntl)
    if value is None:
        raise LockFamilyUnavailable(f"{name} is not known on {constants().NAME}")
    return value


def _kind_of(value: int) -> str:
    for kind in ("read", "write", "unlock"):
        if _type_value(kind) == value:
            return kind
    return f"l_type={value}"


def commands(family: str) -> tuple[int, int, int]:
    """(GETLK, SETLK, SETLKW) for an fcntl family."""
    prefix = {"posix": "F_", "ofd": "F_OFD_"}[family]
    values = tuple(lookup(prefix + name, fcntl) for name in ("GETLK", "SETLK", "SETLKW"))
    if None in values:
        raise LockFamilyUnavailable(f"{prefix}GETLK/SETLK/SETLKW are not defined on {constants().NAME}")
    return values


def pack_flock(kind: str, start: int = 0, length: int = 0, whence: int = os.SEEK_SET, pid: int = 0) -> bytes:
    c = constants()
    if not c.FLOCK_FORMAT:
        raise LockFamilyUnavailable(f"no struct flock layout is known for {c.NAME}")
    fields = dict.fromkeys(c.FLOCK_FIELDS, 0)
    fields.update(l_type=_type_value(kind), l_whence=whence, l_start=start, l_len=length, l_pid=pid)
    return struct.pack(c.FLOCK_FORMAT, *(fields[name] for name in c.FLOCK_FIELDS))


def unpack_flock(data: bytes) -> dict:
    c = constants()
    return dict(zip(c.FLOCK_FIELDS, struct.unpack(c.FLOCK_FORMAT, data)))


# What set_lock has built, so a lock call need not rebuild its command and struct flock. It holds for the
# `constants` and sys.platform it was built under (tests swap both to simulate another OS), and a change of either
# empties it. Only what built without raising is kept, so a missing name raises on every call. Code that changes
# names in place (fcntl's, the platform module's) calls clear_cache().
_requests: dict = {}  # (family, kind, start, length, whence, pid, wait) -> (command, struct flock)
_whole_file: dict = {}  # family -> kind -> the same for a non-blocking request with every default (most calls)
_requests_constants = _requests_platform = None
_REQUESTS_MAX = 4096  # a bound for a caller that locks ever new ranges
_ZERO = 0  # compared by identity, so 0.0 (no int) still reaches struct.pack and is refused there
_SEEK_SET = os.SEEK_SET

# flock operations by `not wait`, then kind: non-blocking unless waiting or unlocking.
_FLOCK_OPERATIONS = ({"read": fcntl.LOCK_SH, "write": fcntl.LOCK_EX, "unlock": fcntl.LOCK_UN},
                     {"read": fcntl.LOCK_SH | fcntl.LOCK_NB, "write": fcntl.LOCK_EX | fcntl.LOCK_NB,
                      "unlock": fcntl.LOCK_UN})


def clear_cache() -> None:
    """Forget the requests set_lock has built."""
    global _requests_constants, _requests_platform
    _requests.clear()
    _whole_file.clear()
    _requests_constants = _requests_platform = None


def _build(family: str, kind: str, start: int, length: int, whence: int, pid: int, wait: bool) -> tuple[int, bytes]:
    """(command, struct flock) from commands() and pack_flock(), kept for the next call if it is all ints."""
    global _requests_constants, _requests_platform
    if _requests_constants is not constants or _requests_platform is not sys.platform \
            or len(_requests) >= _REQUESTS_MAX:
        clear_cache()
        _requests_constants, _requests_platform = constants, sys.platform
    _, setlk, setlkw = commands(family)
    request = setlkw if wait else setlk, pack_flock(kind, start, length, whence, pid)
    if type(start) is int and type(length) is int and type(whence) is int and type(pid) is int:
        _requests[family, kind, start, length, whence, pid, bool(wait)] = request
        if start is _ZERO and length is _ZERO and whence is _SEEK_SET and pid is _ZERO and not wait:
            _whole_file.setdefault(family, {})[kind] = request
    return request


def set_lock(fd: int, family: str, kind: str = "write", start: int = 0, length: int = 0, *,
             whence: int = os.SEEK_SET, wait: bool = False, pid: int = 0) -> None:
    """Take (or with kind="unlock", drop) a lock. A conflict raises OSError (EAGAIN/EACCES; EWOULDBLOCK for flock)."""
    if family == "flock":
        operation = _FLOCK_OPERATIONS[not wait][kind]
        fcntl.flock(fd, operation)
        return
    command = None
    if _requests_constants is constants and _requests_platform is sys.platform:
        try:
            if start is _ZERO and length is _ZERO and whence is _SEEK_SET and pid is _ZERO and not wait:
                command, request = _whole_file[family][kind]
            elif type(start) is int and type(length) is int and type(whence) is int and type(pid) is int:
                command, request = _requests[family, kind, start, length, whence, pid, bool(wait)]
        except (KeyError, TypeError):  # not built yet; an unhashable argument raises below as it always did
            pass
    if command is None:
        command, request = _build(family, kind, start, length, whence, pid, wait)
    fcntl.fcntl(fd, command, request)


def unlock(fd: int, family: str, start: int = 0, length: int = 0) -> None:
    """set_lock(fd, family, "unlock", start, length); a whole-file release is answered here, without a second call."""
    if family == "flock":
        fcntl.flock(fd, fcntl.LOCK_UN)
        return
    command = None
    if start is _ZERO and length is _ZERO and _requests_constants is constants and _requests_platform is sys.platform:
        try:
            command, request = _whole_file[family]["unlock"]
        except (KeyError, TypeError):
            pass
    if command is None:
        set_lock(fd, family, "unlock", start, length)
        return
    fcntl.fcntl(fd, command, request)


def get_lock(fd: int, family: str, kind: str = "write", start: int = 0, length: int = 0, *,
             whence: int = os.SEEK_SET, pid: int = 0) -> Held | None:
    """F_GETLK or F_OFD_GETLK: the first lock that would conflict with `kind` on the range, None if none would."""
    if family == "flock":
        raise ValueError("flock has no query; use holder()")
    getlk, _, _ = commands(family)
    reply = unpack_flock(fcntl.fcntl(fd, getlk, pack_flock(kind, start, length, whence, pid)))
    if reply["l_type"] == _type_value("unlock"):
        return None
    return Held(_kind_of(reply["l_type"]), reply["l_start"], reply["l_len"], reply["l_pid"])


def _query_from_a_new_description(path: str, family: str, kind: str, start: int, length: int, query: str,
                                  flags: int):
    fd = os.open(path, flags)
    try:
        if family != "flock":
            return get_lock(fd, query, kind, start, length)  # a classic query sees OFD locks too, and the reverse
        try:
            set_lock(fd, "flock", kind)
        except BlockingIOError:
            return Held(None)
        return None  # granted: nothing held; the lock ends with this process
    finally:
        os.close(fd)


def holder(path, family: str, kind: str = "write", start: int = 0, length: int = 0, *, query: str = "posix",
           flags: int = os.O_RDWR, timeout: float = DEFAULT_DEADLINE) -> Held | None:
    """From a separate process with a description of its own: what conflicts with a `kind` lock on the range.

    fcntl families are asked with F_GETLK (query="posix", which reports classic holders with their pid and OFD
    holders with l_pid -1) or F_OFD_GETLK (query="ofd"); flock is asked by trying a non-blocking flock.
    """
    return run_in_child(_query_from_a_new_description, os.fspath(path), family, kind, start, length, query, flags,
                        timeout=timeout)


def available(family: str) -> None:
    """Raise LockFamilyUnavailable unless the family's operations and layout are known here."""
    if family == "flock":
        if not hasattr(fcntl, "flock"):
            raise LockFamilyUnavailable("fcntl.flock is not available")
        return
    commands(family)
    pack_flock("write")


def seen_waiting(path, pid: int, timeout: float = DEFAULT_DEADLINE) -> bool | None:
    """Whether the kernel lists a waiter for pid, asked again until it does or the timeout passes: a child on a
    slow machine (an emulated kernel) may not have reached its lock call when the case looks. The kernel offers no
    event to wait for. None where it cannot tell."""
    end = time.monotonic() + timeout
    while True:
        listed = waiters(path, pid)
        if listed is None:
            return None
        if listed:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.002)
