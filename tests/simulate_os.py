"""Simulate another OS's view of Python on this Linux machine, for tests/test_portability.py.

Importing this module with CONFORMANCE_SIMULATE_OS set (freebsd, darwin, illumos or haiku) sets `sys.platform`
to that OS's value and makes the `socket`, `fcntl` and `os` modules look as that OS's CPython builds them: the
names it lacks are removed and the names only it has are added. The kernel underneath is still Linux, so a name
both systems have keeps Linux's value (the one that works here); an added name gets the other OS's value, which
this kernel does not know, so what uses it fails (a `fail`), as long as nothing crashes.

It must run before `conformance` is imported, in every Python process of a run. The nested runs in
test_portability.py make sure of that with a `sitecustomize.py` that imports this module at interpreter start:
the pytest controller, each pytest-xdist worker (a fresh interpreter) and any `python` a case starts all import
it before anything else. With CONFORMANCE_SIMULATE_LOG set, each process appends one JSON line saying what it
applied and whether `conformance` was already imported at that moment, so the test can prove the order.

Every entry of the table cites where the difference comes from: CPython's Modules/socketmodule.c,
Modules/fcntlmodule.c and Modules/posixmodule.c add each constant or function under an `#ifdef` of the OS
header's name, so a name exists in Python exactly where the OS's headers define it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
from dataclasses import dataclass

ENV = "CONFORMANCE_SIMULATE_OS"
LOG_ENV = "CONFORMANCE_SIMULATE_LOG"


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True)
class Entry:
    module: str  # "socket", "fcntl" or "os"
    name: str
    value: object  # ABSENT: the OS's CPython has no such name; else the value it has there
    source: str


@dataclass(frozen=True)
class Simulation:
    os: str  # the suite's name for the OS (conformance.platforms.os_name)
    platform: str  # sys.platform on that OS
    entries: tuple


_CPY_SOCKET = "CPython Modules/socketmodule.c: added under #ifdef"
_CPY_FCNTL = "CPython Modules/fcntlmodule.c all_ins(): added under #ifdef"

# Linux-only socket names: in Linux include/uapi/asm-generic/socket.h and include/linux/socket.h, in none of
# FreeBSD sys/sys/socket.h, XNU bsd/sys/socket.h, illumos usr/src/uts/common/sys/socket.h (illumos has
# SO_RECVUCRED/SCM_UCRED and getpeerucred(3C) instead; golang.org/x/sys unix/zerrors_solaris_amd64.go lists no
# SO_PEERCRED).
_LINUX_ONLY_SOCKET = tuple(
    Entry("socket", name, ABSENT, f"{_CPY_SOCKET} {name}: {why}")
    for name, why in (
        ("SO_PASSCRED", "Linux asm-generic/socket.h only"),
        ("SO_PEERCRED", "Linux asm-generic/socket.h only (illumos: getpeerucred(3C))"),
        ("SCM_CREDENTIALS", "Linux include/linux/socket.h only"),
        ("SO_PASSPIDFD", "Linux 6.5+ only"),
        ("SO_PEERPIDFD", "Linux 6.5+ only"),
        ("SCM_PIDFD", "Linux 6.5+ only"),
        ("SO_PASSRIGHTS", "Linux 6.16+ only"),
        ("SO_PASSSEC", "Linux LSM option only"),
        ("SO_PEERSEC", "Linux LSM option only"),
    )
)

# posixmodule.c builds os.pidfd_open only `#ifdef __NR_pidfd_open` (a Linux syscall number); Python docs:
# "Availability: Linux >= 5.3".
_NO_PIDFD = Entry("os", "pidfd_open", ABSENT, "CPython Modules/posixmodule.c: #ifdef __NR_pidfd_open (Linux only)")

_OFD = ("F_OFD_GETLK", "F_OFD_SETLK", "F_OFD_SETLKW")

SIMULATIONS = {
    "freebsd": Simulation("freebsd", "freebsd14", _LINUX_ONLY_SOCKET + (
        _NO_PIDFD,
        *(Entry("fcntl", name, ABSENT, f"{_CPY_FCNTL} {name}; FreeBSD sys/sys/fcntl.h has no OFD locks")
          for name in _OFD),
        # FreeBSD has these; Linux does not (values: sys/sys/un.h, sys/sys/socket.h; golang.org/x/sys
        # unix/zerrors_freebsd_amd64.go agrees on LOCAL_PEERCRED 1, LOCAL_CREDS 2, SCM_CREDS 3).
        Entry("socket", "LOCAL_PEERCRED", 1, f"{_CPY_SOCKET} LOCAL_PEERCRED; FreeBSD sys/sys/un.h"),
        Entry("socket", "LOCAL_CREDS", 2, f"{_CPY_SOCKET} LOCAL_CREDS; FreeBSD sys/sys/un.h"),
        Entry("socket", "LOCAL_CREDS_PERSISTENT", 3,
              f"{_CPY_SOCKET} LOCAL_CREDS_PERSISTENT (Python 3.11+); FreeBSD 13+ sys/sys/un.h"),
        Entry("socket", "SCM_CREDS", 3, f"{_CPY_SOCKET} SCM_CREDS; FreeBSD sys/sys/socket.h"),
        Entry("socket", "SCM_CREDS2", 8, f"{_CPY_SOCKET} SCM_CREDS2 (Python 3.11+); FreeBSD 13+ sys/sys/socket.h"),
        # Present on FreeBSD too (sys/sys/socket.h MSG_CMSG_CLOEXEC 0x00040000): left with Linux's value.
    )),
    "darwin": Simulation("darwin", "darwin", _LINUX_ONLY_SOCKET + (
        _NO_PIDFD,
        Entry("os", "memfd_create", ABSENT, "CPython Modules/posixmodule.c: #ifdef HAVE_MEMFD_CREATE; no memfd_create "
              "in macOS (gnulib manual, memfd_create: missing on macOS 14); FreeBSD 13+ has one, so it stays there"),
        # XNU bsd/sys/fcntl.h defines F_OFD_SETLK 90 / SETLKW 91 / GETLK 92 only from macOS 14's SDK
        # (xnu-10002); a Python built against an older SDK lacks them. Simulated absent, so the suite's own
        # fallback (platforms/darwin.py) is what runs.
        *(Entry("fcntl", name, ABSENT, f"{_CPY_FCNTL} {name}; XNU bsd/sys/fcntl.h before the macOS 14 SDK")
          for name in _OFD),
        Entry("socket", "MSG_CMSG_CLOEXEC", ABSENT, f"{_CPY_SOCKET} MSG_CMSG_CLOEXEC; XNU bsd/sys/socket.h has none"),
        Entry("socket", "SOCK_CLOEXEC", ABSENT, f"{_CPY_SOCKET} SOCK_CLOEXEC; XNU bsd/sys/socket.h has none"),
        Entry("socket", "SOCK_NONBLOCK", ABSENT, f"{_CPY_SOCKET} SOCK_NONBLOCK; XNU bsd/sys/socket.h has none"),
        # macOS has these (XNU bsd/sys/un.h LOCAL_PEERCRED 1, bsd/sys/socket.h SCM_CREDS 3; golang.org/x/sys
        # unix/zerrors_darwin_arm64.go agrees). CPython exports neither SOL_LOCAL nor LOCAL_PEERPID.
        # SOCK_SEQPACKET stays: CPython has it on macOS, only socketpair(AF_UNIX, SOCK_SEQPACKET) fails there.
        Entry("socket", "LOCAL_PEERCRED", 1, f"{_CPY_SOCKET} LOCAL_PEERCRED; XNU bsd/sys/un.h"),
        Entry("socket", "SCM_CREDS", 3, f"{_CPY_SOCKET} SCM_CREDS; XNU bsd/sys/socket.h"),
    )),
    "illumos": Simulation("illumos", "sunos5", _LINUX_ONLY_SOCKET + (
        _NO_PIDFD,
        # The illumos-gate sys/fcntl.h in the reference store has no F_OFD_*; derivatives (SmartOS, Unleashed)
        # define 47/48/49 for LP64. Simulated absent, so platforms/illumos.py's numbers are what the probe tries.
        *(Entry("fcntl", name, ABSENT, f"{_CPY_FCNTL} {name}; illumos-gate usr/src/uts/common/sys/fcntl.h")
          for name in _OFD),
        Entry("socket", "MSG_CMSG_CLOEXEC", ABSENT,
              f"{_CPY_SOCKET} MSG_CMSG_CLOEXEC; illumos usr/src/uts/common/sys/socket.h MSG_* has none"),
    )),
    # An OS the suite knows nothing about (sys.platform "haiku1"): only the POSIX names stay.
    "haiku": Simulation("haiku1", "haiku1", _LINUX_ONLY_SOCKET + (
        _NO_PIDFD,
        *(Entry("fcntl", name, ABSENT, f"{_CPY_FCNTL} {name}; Linux 3.15+ and few others") for name in _OFD),
        Entry("socket", "MSG_CMSG_CLOEXEC", ABSENT, f"{_CPY_SOCKET} MSG_CMSG_CLOEXEC; not POSIX.1-2017"),
    )),
}

MODULES = {"socket": socket, "fcntl": fcntl, "os": os}
applied: Simulation | None = None


def apply(simulation: Simulation) -> None:
    """Make this interpreter look like the simulated OS's (for good: nothing undoes it)."""
    global applied
    # sysconfig finds its build-time data by sys.platform (_sysconfigdata_<abiflags>_<platform>_<multiarch>):
    # load it while sys.platform is still the real one, or a later get_config_vars() (hypothesis calls it)
    # looks for a module this Python does not have.
    import sysconfig

    sysconfig.get_config_vars()
    sys.platform = simulation.platform
    for entry in simulation.entries:
        module = MODULES[entry.module]
        if entry.value is ABSENT:
            if hasattr(module, entry.name):
                delattr(module, entry.name)
        else:
            setattr(module, entry.name, entry.value)
    applied = simulation


def _log(simulation: Simulation, conformance_first: bool) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    line = {"pid": os.getpid(), "platform": simulation.platform, "argv": list(getattr(sys, "argv", []))[:3],
            "worker": os.environ.get("PYTEST_XDIST_WORKER"), "conformance_imported_before": conformance_first}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


_deselected: list = []


def pytest_deselected(items) -> None:
    """Loaded as a plugin too (-p simulate_os): remember what -k deselected, to count everything collected."""
    _deselected.extend(item.nodeid for item in items)


def pytest_collection_finish(session) -> None:
    """Log what this process collected (selected and deselected), so runs under each OS can be compared."""
    path = os.environ.get(LOG_ENV)
    if not path or applied is None:
        return
    ids = sorted([item.nodeid for item in session.items] + _deselected)
    if not ids:
        return  # a pytest-xdist controller collects nothing itself: its workers do
    line = {"pid": os.getpid(), "platform": sys.platform, "collected": len(ids),
            "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest()}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


_wanted = os.environ.get(ENV)
if _wanted and applied is None:
    if _wanted not in SIMULATIONS:
        raise SystemExit(f"{ENV}={_wanted!r}: not one of {', '.join(SIMULATIONS)}")
    _already = any(name == "conformance" or name.startswith("conformance.") for name in sys.modules)
    apply(SIMULATIONS[_wanted])
    _log(SIMULATIONS[_wanted], _already)
