"""Channel-independent descriptor duplication: send a small token over any channel, the receiver redeems it.

The QNX article (seed 004) sends an _IO_DUP message naming the sender's pid and connection; the receiver asks the
server to duplicate it, which "only works between clients in similar uid groups (or root)". Linux has the same
shape: the token names a pid and a descriptor number, and the receiver calls pidfd_open(pid) and then
pidfd_getfd(pidfd, fd, 0) (Linux 5.6), which the kernel allows only with ptrace access to the sender
(PTRACE_MODE_ATTACH_REALCREDS: same uid and a dumpable sender, or CAP_SYS_PTRACE, and what Yama's ptrace_scope
permits). The duplicate refers to the sender's open file description and always has FD_CLOEXEC (pidfd_getfd(2)).

A pid alone can name a later process once the sender is reaped, so the token also carries the sender's start time
and redeem() refuses a token whose pid now belongs to another process (StaleToken), checked after pidfd_open so
that the pidfd cannot change process in between.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from dataclasses import dataclass

from .platforms import constants, pidfd_getfd_number
from .unavailable import Unavailable

MAGIC = b"FDTK"
VERSION = 1
# magic, version, pid, descriptor number, the sender's start time (0: unknown, not checked).
TOKEN_FORMAT = "=4sB3xiiQ"
TOKEN_SIZE = struct.calcsize(TOKEN_FORMAT)


class TokenError(ValueError):
    """Not a token (the seed's receive_fd answers EINVAL to a message of the wrong size or type)."""


class StaleToken(TokenError):
    """The token's pid names another process now: its sender has exited and the pid was reused."""


@dataclass(frozen=True)
class Token:
    pid: int
    fd: int
    start: int

    def pack(self) -> bytes:
        return struct.pack(TOKEN_FORMAT, MAGIC, VERSION, self.pid, self.fd, self.start)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None where the platform does not show it."""
    template = constants().PROC_STAT
    if template is None:
        return None
    try:
        with open(template.format(pid=pid), "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold blanks and parentheses: count fields from the last ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[22 - 3])


def make_token(fd: int) -> bytes:
    """A token for one of this process's descriptors."""
    pid = os.getpid()
    return Token(pid, fd, start_time(pid) or 0).pack()


def parse_token(data: bytes) -> Token:
    if len(data) != TOKEN_SIZE:
        raise TokenError(f"a token is {TOKEN_SIZE} bytes, this message is {len(data)}")
    magic, version, pid, fd, start = struct.unpack(TOKEN_FORMAT, data)
    if magic != MAGIC:
        raise TokenError(f"not a token: magic {magic!r}")
    if version != VERSION:
        raise TokenError(f"token version {version}, this code reads version {VERSION}")
    if pid <= 0 or fd < 0:
        raise TokenError(f"token names pid {pid}, descriptor {fd}")
    return Token(pid, fd, start)


def _syscall_number() -> int:
    number = pidfd_getfd_number()
    if number is None:
        raise Unavailable(f"no pidfd_getfd syscall number is known for {constants().NAME}/{platform.machine()}")
    return number


def pidfd_getfd(pidfd: int, targetfd: int, flags: int = 0) -> int:
    """pidfd_getfd(2) through syscall(2): Python has no binding. Raises OSError with the kernel's errno."""
    number = _syscall_number()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # syscall() reads every argument as a long: pass longs, so no upper half is left undefined.
    fd = libc.syscall(ctypes.c_long(number), ctypes.c_long(pidfd), ctypes.c_long(targetfd),
                      ctypes.c_long(flags))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pidfd_getfd: {os.strerror(err)}")
    return fd


def pidfd_open(pid: int) -> int:
    if not hasattr(os, "pidfd_open"):
        raise Unavailable("os.pidfd_open is not available")
    return os.pidfd_open(pid)


def redeem(data: bytes) -> int:
    """The sender's descriptor, duplicated into this process (FD_CLOEXEC set); the caller closes it.

    TokenError for a malformed token, StaleToken when its pid now names another process, OSError with the
    kernel's errno when pidfd_open or pidfd_getfd refuses (ESRCH: the sender is gone; EPERM: no ptrace access;
    EBADF: the sender no longer has that descriptor), Unavailable where the platform has no pidfd_getfd.
    """
    token = parse_token(data)
    _syscall_number()
    pidfd = pidfd_open(token.pid)
    try:
        if token.start:
            now = start_time(token.pid)
            if now is None:
                raise StaleToken(f"pid {token.pid} cannot be confirmed as the token's sender: its start time is "
                                 "not readable")
            if now != token.start:
                raise StaleToken(f"pid {token.pid} started at tick {now}, the token's sender at {token.start}")
        return pidfd_getfd(pidfd, token.fd)
    finally:
        os.close(pidfd)


# ---- what governs permission --------------------------------------------------------------------------------------

def yama_ptrace_scope() -> int | None:
    """Yama's ptrace_scope (0 classic, 1 descendants only, 2 admin only, 3 none), None without Yama."""
    path = constants().YAMA_PTRACE_SCOPE
    if path is None:
        return None
    try:
        with open(path) as f:
            return int(f.read())
    except (FileNotFoundError, ValueError):
        return None


def _prctl(option: int | None, value: int, what: str) -> None:
    if option is None:
        raise Unavailable(f"no {what} on {constants().NAME}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value & ctypes.c_ulong(-1).value), ctypes.c_ulong(0),
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({what}): {os.strerror(err)}")


def set_dumpable(on: bool) -> None:
    """PR_SET_DUMPABLE: a process that changed its uid is not dumpable, and only CAP_SYS_PTRACE reaches it."""
    _prctl(constants().PR_SET_DUMPABLE, int(on), "PR_SET_DUMPABLE")


def allow_any_ptracer() -> bool:
    """PR_SET_PTRACER_ANY: let Yama's scope 1 admit a non-ancestor. False where Yama is absent (EINVAL) or the
    platform has no such option."""
    c = constants()
    try:
        _prctl(c.PR_SET_PTRACER, c.PR_SET_PTRACER_ANY if c.PR_SET_PTRACER_ANY is not None else 0, "PR_SET_PTRACER")
    except (OSError, Unavailable):
        return False
    return True
