"""Capability probes: does this machine have a mechanism at all?

A probe looks a name up with getattr (in the socket, fcntl or os module, then in the platform's
constants) and, where that is cheap, tries the mechanism once. It never raises: every path returns
a Capability with the reason. Cases call `require(name)` and the mechanism's absence becomes the
outcome `unsupported` with that reason. A lock family's probe is part of its registry entry
(conformance.locks): its name and check come from there.
"""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import socket
import struct
from collections.abc import MutableMapping
from dataclasses import dataclass
from functools import cache
from typing import Callable

from .. import locks
from . import constants, lookup, pidfd_getfd_number


@dataclass(frozen=True)
class Capability:
    name: str
    supported: bool
    reason: str

    def as_dict(self) -> dict:
        return {"supported": self.supported, "reason": self.reason}


def _errname(e: OSError) -> str:
    return errno.errorcode.get(e.errno, str(e.errno))


def _on_a_stream_pair(check: Callable[[socket.socket, socket.socket], tuple[bool, str]]) -> tuple[bool, str]:
    """check(a, b) on a fresh connected AF_UNIX stream pair, closed afterwards; an OSError it raises is the reason
    the mechanism is missing, and so is a stream pair that cannot be made."""
    try:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    except (OSError, AttributeError) as e:
        why = _errname(e) if isinstance(e, OSError) else str(e)
        return False, f"socketpair(AF_UNIX, SOCK_STREAM) failed: {why}"
    with a, b:
        return check(a, b)


def _socketpair_type(type_name: str) -> tuple[bool, str]:
    kind = getattr(socket, type_name, None)
    if not hasattr(socket, "AF_UNIX") or kind is None:
        return False, f"socket.AF_UNIX or socket.{type_name} is not defined"
    try:
        a, b = socket.socketpair(socket.AF_UNIX, kind)
    except OSError as e:
        return False, f"socketpair(AF_UNIX, {type_name}) failed: {_errname(e)}"
    a.close()
    b.close()
    return True, f"socketpair(AF_UNIX, {type_name}) works"


def _scm_rights() -> tuple[bool, str]:
    for name in ("AF_UNIX", "SCM_RIGHTS", "CMSG_LEN"):
        if getattr(socket, name, None) is None:
            return False, f"socket.{name} is not defined"
    if not hasattr(socket.socket, "sendmsg"):
        return False, "socket.sendmsg is not available"
    return _on_a_stream_pair(_pass_a_pipe)


def _pass_a_pipe(a: socket.socket, b: socket.socket) -> tuple[bool, str]:
    try:
        r, w = os.pipe()
    except OSError as e:
        return False, f"pipe() failed: {_errname(e)}"
    try:
        a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", w))])
        # A generous buffer: CMSG_LEN(4) is too small for one descriptor on FreeBSD (it needs CMSG_SPACE(4)).
        _, ancdata, _, _ = b.recvmsg(1, 64)
        received = [struct.unpack("i", data[:4])[0] for level, kind, data in ancdata
                    if kind == socket.SCM_RIGHTS and len(data) >= 4]
        for fd in received:
            os.close(fd)
        if not received:
            return False, "a descriptor sent with SCM_RIGHTS did not arrive"
        return True, "SCM_RIGHTS round trip on a stream socketpair"
    except OSError as e:
        return False, f"SCM_RIGHTS round trip failed: {_errname(e)}"
    finally:
        for fd in (r, w):
            os.close(fd)


def _msg_cmsg_cloexec() -> tuple[bool, str]:
    flag = lookup("MSG_CMSG_CLOEXEC", socket)
    if flag is None:
        return False, "MSG_CMSG_CLOEXEC is not defined on this platform"

    def receive_with_the_flag(a: socket.socket, b: socket.socket) -> tuple[bool, str]:
        try:
            a.send(b"x")
            b.recvmsg(1, 64, flag)
        except OSError as e:
            return False, f"recvmsg with MSG_CMSG_CLOEXEC failed: {_errname(e)}"
        return True, f"recvmsg accepts MSG_CMSG_CLOEXEC ({flag:#x})"

    return _on_a_stream_pair(receive_with_the_flag)


def _sockopt(
    name: str, level_name: str = "SOL_SOCKET", settable: bool = False, returns_fd: bool = False
) -> Callable[[], tuple[bool, str]]:
    """A probe for a socket option: the name exists and the kernel knows it on an AF_UNIX socket."""

    def probe() -> tuple[bool, str]:
        option = lookup(name, socket)
        level = 0 if level_name == "SOL_LOCAL" else lookup(level_name, socket)
        if option is None or level is None:
            return False, f"{name} is not defined on this platform"

        def use_it(a: socket.socket, b: socket.socket) -> tuple[bool, str]:
            try:
                if settable:
                    a.setsockopt(level, option, 1)
                elif returns_fd:
                    os.close(a.getsockopt(level, option))
                else:
                    a.getsockopt(level, option, 256)
            except OSError as e:
                return False, f"{name} refused on AF_UNIX: {_errname(e)}"
            return True, f"{'setsockopt' if settable else 'getsockopt'}({name}) works on AF_UNIX"

        return _on_a_stream_pair(use_it)

    return probe


def _named(name: str, *modules, what: str = "") -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        value = lookup(name, *modules)
        if value is None:
            return False, f"{name} is not defined on this platform"
        return True, f"{name} = {value}{what}"

    return probe


def _pidfd_open() -> tuple[bool, str]:
    if not hasattr(os, "pidfd_open"):
        return False, "os.pidfd_open is not available"
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as e:
        return False, f"pidfd_open failed: {_errname(e)}"
    return True, "pidfd_open(getpid()) works"


def _pidfd_getfd() -> tuple[bool, str]:
    number = pidfd_getfd_number()
    if number is None:
        return False, f"no pidfd_getfd syscall number known for {constants().NAME}/{platform.machine()}"
    ok, reason = _pidfd_open()
    if not ok:
        return False, reason
    from ..duplication import pidfd_getfd

    pidfd = os.pidfd_open(os.getpid())
    try:
        os.close(pidfd_getfd(pidfd, pidfd))  # a descriptor certain to exist
        return True, f"pidfd_getfd (syscall {number}) duplicated one of this process's descriptors"
    except OSError as e:
        return False, f"pidfd_getfd failed: {_errname(e)}"
    finally:
        os.close(pidfd)


def _pidfd_get_info() -> tuple[bool, str]:
    ok, reason = _pidfd_open()
    if not ok:
        return False, reason
    from ..credentials import pidfd_info
    from ..unavailable import Unavailable

    pidfd = os.pidfd_open(os.getpid())
    try:
        pidfd_info(pidfd)
    except Unavailable as e:
        return False, e.reason
    except OSError as e:  # ENOTTY or EINVAL before 6.13
        return False, f"ioctl(PIDFD_GET_INFO) on a pidfd of this process failed: {_errname(e)}"
    finally:
        os.close(pidfd)
    return True, "ioctl(PIDFD_GET_INFO) answers on a pidfd of this process"


def _abstract_unix_addresses() -> tuple[bool, str]:
    """Linux's abstract namespace: an AF_UNIX address whose sun_path starts with a NUL byte names no file."""
    if not hasattr(socket, "AF_UNIX"):
        return False, "socket.AF_UNIX is not defined"
    name = b"\0conformance-probe-%d-%d" % (os.getpid(), id(object()))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind(name)
            bound = s.getsockname()
    except (OSError, ValueError) as e:
        why = _errname(e) if isinstance(e, OSError) else str(e)
        return False, f"bind to an address that starts with a NUL byte failed: {why}"
    if bound != name:
        return False, f"bind to an abstract address was taken as {bound!r}"
    return True, "bind to an abstract address (sun_path starting with a NUL byte) works"


def _posix_mqueue() -> tuple[bool, str]:
    from ..mqueue import Queue
    from ..unavailable import Unavailable

    try:
        Queue(8).close()
    except Unavailable as e:
        return False, e.reason
    except OSError as e:
        return False, f"mq_open failed: {_errname(e)}"
    return True, "mq_open of an 8-byte queue works (unlinked at once)"


def _streams() -> tuple[bool, str]:
    c = constants()
    if c.I_SENDFD is None or c.I_RECVFD is None or c.I_NREAD is None:
        return False, f"no STREAMS I_SENDFD/I_RECVFD/I_NREAD on {c.NAME}"
    try:
        r, w = os.pipe()
    except OSError as e:
        return False, f"pipe() failed: {_errname(e)}"
    try:
        # A pipe in fifofs's fast mode answers I_NREAD without turning into a STREAMS pipe (fifovnops.c).
        fcntl.ioctl(r, c.I_NREAD, struct.pack("i", 0))
    except OSError as e:
        return False, f"pipes are not STREAMS here (I_NREAD: {_errname(e)})"
    finally:
        os.close(r)
        os.close(w)
    import ctypes

    try:
        getmsg = getattr(ctypes.CDLL(None), "getmsg", None)
    except OSError as e:
        return False, f"the C library cannot be loaded: {e}"
    if getmsg is None:
        return False, "pipes answer I_NREAD, but the C library has no getmsg(2)"
    return True, "pipes answer the STREAMS I_NREAD ioctl and libc has getmsg(2)"


# This module's own probes; the lock families' come from their registry entries (see ProbeTable).
_OWN_PROBES: dict[str, Callable[[], tuple[bool, str]]] = {
    "sock_stream": lambda: _socketpair_type("SOCK_STREAM"),
    "sock_dgram": lambda: _socketpair_type("SOCK_DGRAM"),
    "sock_seqpacket": lambda: _socketpair_type("SOCK_SEQPACKET"),
    "scm_rights": _scm_rights,
    "msg_cmsg_cloexec": _msg_cmsg_cloexec,
    "so_peercred": _sockopt("SO_PEERCRED"),
    "so_passcred": _sockopt("SO_PASSCRED", settable=True),
    "scm_credentials": _named("SCM_CREDENTIALS", socket),
    "so_passpidfd": _sockopt("SO_PASSPIDFD", settable=True),
    "so_peerpidfd": _sockopt("SO_PEERPIDFD", returns_fd=True),
    "so_passrights": _sockopt("SO_PASSRIGHTS", settable=True),
    "so_rights_notrunc": _sockopt("SO_RIGHTS_NOTRUNC", settable=True),
    "scm_creds": _named("SCM_CREDS", socket),
    "local_peercred": _sockopt("LOCAL_PEERCRED", "SOL_LOCAL"),
    "local_peerpid": _sockopt("LOCAL_PEERPID", "SOL_LOCAL"),
    "local_creds": _named("LOCAL_CREDS", socket),
    "local_creds_persistent": _named("LOCAL_CREDS_PERSISTENT", socket),
    "pidfd_open": _pidfd_open,
    "pidfd_getfd": _pidfd_getfd,
    "pidfd_get_info": _pidfd_get_info,
    "abstract_unix_addresses": _abstract_unix_addresses,
    "posix_mqueue": _posix_mqueue,
    "streams_sendfd": _streams,
}


class ProbeTable(MutableMapping):
    """Every probe by name: this module's own, then one per registered lock family (conformance.locks), with the
    entry's probe name and check. The families are asked each time, so that one registered later (by a plugin, a
    self-test) has its probe too; a family's probe changes only with its entry."""

    def __init__(self, own: dict) -> None:
        self._own = own

    def _lock_probes(self) -> dict:
        return {family.probe: family.check for family in locks.families()}

    def __getitem__(self, name: str) -> Callable[[], tuple[bool, str]]:
        if name in self._own:
            return self._own[name]
        return self._lock_probes()[name]

    def __iter__(self):
        yield from self._own
        yield from self._lock_probes()

    def __len__(self) -> int:
        return len(self._own) + len(locks.families())

    def __setitem__(self, name: str, probe: Callable[[], tuple[bool, str]]) -> None:
        if name in self._lock_probes():
            raise ValueError(f"{name} is a lock family's probe: its check is part of the family's registry entry")
        self._own[name] = probe

    def __delitem__(self, name: str) -> None:
        del self._own[name]


PROBES = ProbeTable(_OWN_PROBES)


def run_probe(name: str) -> Capability:
    """Run one probe now. An unexpected exception is itself a reason, never a crash."""
    try:
        supported, reason = PROBES[name]()
    except Exception as e:  # a probe must never take the suite down
        supported, reason = False, f"probe raised {type(e).__name__}: {e}"
    return Capability(name, supported, reason)


@cache
def probe(name: str) -> Capability:
    """The cached result of one probe (probes are stable for the life of a process)."""
    return run_probe(name)


def probe_all() -> dict[str, Capability]:
    return {name: probe(name) for name in PROBES}
