"""Lock families as data, and their operations with the platform's own struct flock and command numbers.

A family is one registry entry (`Family`): its name (the case id), its capability probe, who owns a lock (the
process or the open file description), byte ranges or the whole file, what the references say about it where a
case must know (EDEADLK, EBADF for the open mode), and its operations: fcntl(2) with a query, a set and a
set-and-wait command, or flock(2). Cases choose families by property (`families(owner="description")`,
`families(ranges=True)`), and the capability probes are the entries' own. Registered here, in this order:

- `posix`: classic POSIX record locks (F_GETLK/F_SETLK/F_SETLKW), owned by the process;
- `ofd`: open file description locks (F_OFD_GETLK/SETLK/SETLKW), owned by the description; the numbers come
  from Python's fcntl module, else from the platform module (macOS 90/91/92 even where Python lacks the names);
- `flock`: whole-file BSD locks, owned by the description.

A case calls a family's operations (`family.lock(fd, "write")`); `set_lock`, `unlock`, `get_lock` and `available`
do the same for a caller that holds a family's name. `holder()` asks "who holds this range?" from a third process
with a description of its own, so a case can check a lock without disturbing it (a query from the holder's own
process or description would see no conflict). `Observer().holder()` asks the same of one helper process made once
for many questions, instead of a forked child per question.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Union

from .harness.children import DEFAULT_DEADLINE, Helper, run_in_child
from .platforms import constants, lookup, process
from .platforms.lock_table import waiters  # locks.waiters(path, pid): what the kernel lists, where it can
from .unavailable import Unavailable

KINDS = ("read", "write")
OWNERS = ("process", "description")


class LockFamilyUnavailable(Unavailable):
    """The platform lacks this family (FreeBSD has no OFD locks); `reason` says what is missing."""


# ---- struct flock ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Held:
    """A lock as F_GETLK reports it (or, for a family without a query such as flock, only that something conflicts:
    kind None, pid None)."""

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


def _errname(e: OSError) -> str:
    return errno.errorcode.get(e.errno, str(e.errno))


# ---- the request cache -----------------------------------------------------------------------------------------------

# What a family's lock call has built, so that the next need not rebuild its command and struct flock. It holds for
# the `constants` and sys.platform it was built under (tests swap both to simulate another OS), and a change of
# either empties it. Only what built without raising is kept, so a missing name raises on every call. Code that
# changes names in place (fcntl's, the platform module's) calls clear_cache().
_requests_constants = _requests_platform = None
_REQUESTS_MAX = 4096  # a bound, per family, for a caller that locks ever new ranges
_ZERO = 0  # compared by identity, so 0.0 (no int) still reaches struct.pack and is refused there
_SEEK_SET = os.SEEK_SET
_cached: weakref.WeakSet = weakref.WeakSet()  # every FcntlOperations, whose requests clear_cache() forgets


def clear_cache() -> None:
    """Forget the requests every family has built."""
    global _requests_constants, _requests_platform
    for operations in _cached:
        operations.forget()
    _requests_constants = _requests_platform = None


# ---- operations: how a family's locks are taken ----------------------------------------------------------------------

class FcntlOperations:
    """Locks taken with fcntl(2): the family's query, set and set-and-wait commands, by name, numbered by Python's
    fcntl module or else by the platform's constants, with the platform's struct flock."""

    system_call = "fcntl"
    __slots__ = ("names", "_whole_file", "_requests", "__weakref__")

    def __init__(self, getlk: str, setlk: str, setlkw: str) -> None:
        self.names = (getlk, setlk, setlkw)
        self._whole_file: dict = {}  # kind -> (command, struct flock) of a non-blocking request with every default
        self._requests: dict = {}  # (kind, start, length, whence, pid, wait) -> the same, for any other request
        _cached.add(self)

    def __repr__(self) -> str:
        return f"FcntlOperations{self.names!r}"

    @property
    def query_command(self) -> str:
        return self.names[0]

    def numbers(self) -> tuple[int, int, int]:
        """(query, set, set-and-wait) command numbers on this platform."""
        values = tuple(lookup(name, fcntl) for name in self.names)
        if None in values:
            prefix = os.path.commonprefix(self.names)  # F_OFD_GETLK/SETLK/SETLKW, as fcntl.h groups them
            spelled = "/".join([self.names[0], *(name[len(prefix):] for name in self.names[1:])])
            raise LockFamilyUnavailable(f"{spelled} are not defined on {constants().NAME}")
        return values

    def forget(self) -> None:
        self._whole_file.clear()
        self._requests.clear()

    def lock(self, fd: int, kind: str = "write", start: int = 0, length: int = 0, *, whence: int = _SEEK_SET,
             wait: bool = False, pid: int = 0) -> None:
        command = None
        if _requests_constants is constants and _requests_platform is sys.platform:
            try:
                if start is _ZERO and length is _ZERO and whence is _SEEK_SET and pid is _ZERO and not wait:
                    command, request = self._whole_file[kind]
                elif type(start) is int and type(length) is int and type(whence) is int and type(pid) is int:
                    command, request = self._requests[kind, start, length, whence, pid, bool(wait)]
            except (KeyError, TypeError):  # not built yet; an unhashable argument raises below as it always did
                pass
        if command is None:
            command, request = self._build(kind, start, length, whence, pid, wait)
        fcntl.fcntl(fd, command, request)

    def unlock(self, fd: int, start: int = 0, length: int = 0) -> None:
        """A whole-file release is answered here, without a second call."""
        command = None
        if start is _ZERO and length is _ZERO and _requests_constants is constants \
                and _requests_platform is sys.platform:
            try:
                command, request = self._whole_file["unlock"]
            except KeyError:
                pass
        if command is None:
            self.lock(fd, "unlock", start, length)
            return
        fcntl.fcntl(fd, command, request)

    def _build(self, kind: str, start: int, length: int, whence: int, pid: int, wait: bool) -> tuple[int, bytes]:
        """(command, struct flock) from numbers() and pack_flock(), kept for the next call if it is all ints."""
        global _requests_constants, _requests_platform
        if _requests_constants is not constants or _requests_platform is not sys.platform:
            clear_cache()
            _requests_constants, _requests_platform = constants, sys.platform
        elif len(self._requests) >= _REQUESTS_MAX:
            self.forget()
        _, setlk, setlkw = self.numbers()
        request = setlkw if wait else setlk, pack_flock(kind, start, length, whence, pid)
        if type(start) is int and type(length) is int and type(whence) is int and type(pid) is int:
            self._requests[kind, start, length, whence, pid, bool(wait)] = request
            if start is _ZERO and length is _ZERO and whence is _SEEK_SET and pid is _ZERO and not wait:
                self._whole_file[kind] = request
        return request

    def query(self, fd: int, kind: str = "write", start: int = 0, length: int = 0, *, whence: int = _SEEK_SET,
              pid: int = 0) -> Held | None:
        getlk, _, _ = self.numbers()
        reply = unpack_flock(fcntl.fcntl(fd, getlk, pack_flock(kind, start, length, whence, pid)))
        if reply["l_type"] == _type_value("unlock"):
            return None
        return Held(_kind_of(reply["l_type"]), reply["l_start"], reply["l_len"], reply["l_pid"])

    def available(self) -> None:
        self.numbers()
        pack_flock("write")

    def check(self) -> tuple[bool, str]:
        """The capability probe: query an unlocked file with the query command and the platform's struct flock.
        Never raises."""
        name = self.query_command
        command = lookup(name, fcntl)
        try:
            # The very request the cases make, so that the probe tries what they do.
            request, unlocked = pack_flock("write"), _type_value("unlock")
        except LockFamilyUnavailable:
            command = None
        if command is None:
            return False, f"{name} or the struct flock layout is not known on this platform"
        try:
            with tempfile.TemporaryFile() as f:
                reply = fcntl.fcntl(f.fileno(), command, request)
        except OSError as e:
            return False, f"fcntl({name}) failed: {_errname(e)}"
        l_type = unpack_flock(reply)["l_type"]
        if l_type != unlocked:
            return False, f"fcntl({name}) on an unlocked file returned l_type {l_type}, not F_UNLCK"
        return True, f"fcntl({name}) = {command} answers F_UNLCK on an unlocked file"


# flock operations by `not wait`, then kind: non-blocking unless waiting or unlocking.
_FLOCK_OPERATIONS = ({"read": fcntl.LOCK_SH, "write": fcntl.LOCK_EX, "unlock": fcntl.LOCK_UN},
                     {"read": fcntl.LOCK_SH | fcntl.LOCK_NB, "write": fcntl.LOCK_EX | fcntl.LOCK_NB,
                      "unlock": fcntl.LOCK_UN})


class FlockOperations:
    """Locks taken with flock(2): shared or exclusive, on the whole file whatever range is asked; no query."""

    system_call = "flock"
    query_command = None
    __slots__ = ()

    def __repr__(self) -> str:
        return "FlockOperations()"

    def numbers(self) -> tuple[int, int, int]:
        raise ValueError("flock takes no fcntl commands")

    def lock(self, fd: int, kind: str = "write", start: int = 0, length: int = 0, *, whence: int = _SEEK_SET,
             wait: bool = False, pid: int = 0) -> None:
        fcntl.flock(fd, _FLOCK_OPERATIONS[not wait][kind])

    def unlock(self, fd: int, start: int = 0, length: int = 0) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def query(self, fd: int, kind: str = "write", start: int = 0, length: int = 0, *, whence: int = _SEEK_SET,
              pid: int = 0) -> Held | None:
        raise ValueError("flock has no query; use holder()")

    def available(self) -> None:
        if not hasattr(fcntl, "flock"):
            raise LockFamilyUnavailable("fcntl.flock is not available")

    def check(self) -> tuple[bool, str]:
        """The capability probe: an exclusive non-blocking flock and its release on a new file. Never raises."""
        if not hasattr(fcntl, "flock"):
            return False, "fcntl.flock is not available"
        try:
            with tempfile.TemporaryFile() as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        except OSError as e:
            return False, f"flock failed: {_errname(e)}"
        return True, "flock(LOCK_EX|LOCK_NB) and LOCK_UN work"


Operations = Union[FcntlOperations, FlockOperations]


# ---- the registry ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Family:
    """One lock family: its name (the case id), its capability probe, what the references say about it, and its
    operations. Cases select families by these properties (see `families`), never by name, and call its operations:

        family.lock(fd, kind="write", start=0, length=0, *, whence=SEEK_SET, wait=False, pid=0)
            take (or with kind="unlock", drop) a lock; a conflict raises OSError (EAGAIN or EACCES; EWOULDBLOCK
            for flock)
        family.unlock(fd, start=0, length=0)
        family.query(fd, kind="write", start=0, length=0, *, whence=SEEK_SET, pid=0)
            the family's query command: the first lock that would conflict with `kind` on the range, None if none
        family.available()
            raise LockFamilyUnavailable unless its names and the struct flock layout are known here

    They are the operations' own methods, bound once here, so that a call costs one Python call, as a hot loop
    (conformance bench) needs.
    """

    name: str
    probe: str  # the capability probe's name in reports; its check is `check`
    operations: Operations
    owner: str  # whose lock it is, and so what ends it: "process" or "description" (the open file description)
    ranges: bool  # byte ranges; False: the whole file only
    detects_deadlock: bool  # the references expect EDEADLK from a wait that would close a cycle of waiters
    checks_open_mode: bool  # a read lock needs a descriptor open for reading, a write lock one open for writing
    # The probe's check, (supported, reason), never raising; by default the operations' own (the query command
    # answers on an unlocked file; flock works).
    check: Callable[[], tuple[bool, str]] | None = field(default=None, repr=False)
    # The module whose import registers the family: a fresh interpreter (an exec'd helper) imports it to find it.
    defined_in: str = __name__

    def __post_init__(self) -> None:
        if self.owner not in OWNERS:
            raise ValueError(f"lock family {self.name}: owner {self.owner!r} is none of {', '.join(OWNERS)}")
        if self.check is None:
            object.__setattr__(self, "check", self.operations.check)
        for operation in ("lock", "unlock", "query", "available"):
            object.__setattr__(self, operation, getattr(self.operations, operation))

    def __str__(self) -> str:
        return self.name  # the case id, and how messages name it

    @property
    def query_command(self) -> str | None:
        """F_GETLK or F_OFD_GETLK; None where the family has no query (flock)."""
        return self.operations.query_command

    @property
    def queryable(self) -> bool:
        return self.query_command is not None

    @property
    def system_call(self) -> str:
        return self.operations.system_call


# What families() selects by.
PROPERTIES = ("name", "probe", "owner", "ranges", "detects_deadlock", "checks_open_mode", "query_command",
              "queryable", "system_call")

_registry: dict[str, Family] = {}  # name -> family, in registration order


def register(family: Family) -> Family:
    """Add a family; cases are parametrised in registration order. Its name and probe name must be new."""
    clash = [f for f in _registry.values() if f.name == family.name or f.probe == family.probe]
    if clash:
        raise ValueError(f"lock family {family.name} (probe {family.probe}) clashes with {clash[0].name} "
                         f"(probe {clash[0].probe})")
    _registry[family.name] = family
    return family


def unregister(name: str) -> Family:
    """Remove a registered family (a test's own); returns it."""
    return _registry.pop(name)


def family(name: str) -> Family:
    """The registered family of this name."""
    try:
        return _registry[name]
    except KeyError:
        raise LookupError(f"no lock family {name!r} is registered (registered: {', '.join(_registry)})") from None


def families(**properties) -> tuple[Family, ...]:
    """The registered families with these property values, in registration order: families() for all,
    families(owner="description"), families(ranges=True)."""
    unknown = sorted(set(properties) - set(PROPERTIES))
    if unknown:
        raise TypeError(f"lock families have no property {', '.join(unknown)}; they have {', '.join(PROPERTIES)}")
    return tuple(f for f in _registry.values() if all(getattr(f, k) == v for k, v in properties.items()))


register(Family(
    "posix", probe="posix_locks", operations=FcntlOperations("F_GETLK", "F_SETLK", "F_SETLKW"),
    owner="process",  # POSIX.1-2024 XSH fcntl(): a process's locks, released when it closes any descriptor of the file
    ranges=True,
    detects_deadlock=True,  # POSIX.1-2024 XSH fcntl() [EDEADLK]; FreeBSD tests/sys/file/flock_helper.c tests 5, 6
    checks_open_mode=True,  # POSIX.1-2024 XSH fcntl() [EBADF]: F_RDLCK needs reading, F_WRLCK writing access
))
register(Family(
    "ofd", probe="ofd_locks", operations=FcntlOperations("F_OFD_GETLK", "F_OFD_SETLK", "F_OFD_SETLKW"),
    owner="description",  # POSIX.1-2024 XSH fcntl() F_OFD_SETLK; Linux fcntl(2) "Open file description locks"
    ranges=True,
    detects_deadlock=False,  # Linux fcntl(2): no deadlock detection for OFD locks
    checks_open_mode=True,  # POSIX.1-2024 XSH fcntl() [EBADF], F_OFD_SETLK as F_SETLK
))
register(Family(
    "flock", probe="flock", operations=FlockOperations(),
    owner="description",  # flock(2): locks are associated with the open file description
    ranges=False,
    detects_deadlock=False,  # flock(2) lists no EDEADLK
    checks_open_mode=False,  # flock(2): a lock may be placed on a file whatever the mode it was opened in
))


# ---- by name, and who holds a range ----------------------------------------------------------------------------------

def _entry(which: Family | str) -> Family:
    return family(which) if type(which) is str else which


def commands(family: Family | str) -> tuple[int, int, int]:
    """(GETLK, SETLK, SETLKW) for an fcntl family."""
    return _entry(family).operations.numbers()


# A family's operations, for a caller that holds a family or its name.

def set_lock(fd: int, family: Family | str, kind: str = "write", start: int = 0, length: int = 0, *,
             whence: int = os.SEEK_SET, wait: bool = False, pid: int = 0) -> None:
    _entry(family).lock(fd, kind, start, length, whence=whence, wait=wait, pid=pid)


def unlock(fd: int, family: Family | str, start: int = 0, length: int = 0) -> None:
    _entry(family).unlock(fd, start, length)


def get_lock(fd: int, family: Family | str, kind: str = "write", start: int = 0, length: int = 0, *,
             whence: int = os.SEEK_SET, pid: int = 0) -> Held | None:
    return _entry(family).query(fd, kind, start, length, whence=whence, pid=pid)


def available(family: Family | str) -> None:
    _entry(family).available()


def _query_from_a_new_description(path: str, family: Family, kind: str, start: int, length: int, query: Family,
                                  flags: int):
    fd = os.open(path, flags)
    try:
        if family.queryable:
            return query.query(fd, kind, start, length)  # a classic query sees OFD locks too, and the reverse
        try:
            family.lock(fd, kind)
        except BlockingIOError:
            return Held(None)
        family.unlock(fd)  # granted: nothing held; and this asker holds nothing once it has asked
        return None
    finally:
        os.close(fd)


def _query_by_name(path: str, family_name: str, kind: str, start: int, length: int, query_name: str, flags: int):
    """In an Observer's helper: the question of _query_from_a_new_description, families named as registered."""
    return _query_from_a_new_description(path, family(family_name), kind, start, length, family(query_name), flags)


def holder(path, family: Family | str, kind: str = "write", start: int = 0, length: int = 0, *,
           query: Family | str = "posix", flags: int = os.O_RDWR, timeout: float = DEFAULT_DEADLINE) -> Held | None:
    """From a separate process with a description of its own: what conflicts with a `kind` lock on the range.

    A family with a query command is asked with the query of the family `query`: F_GETLK by default, which reports
    classic holders with their pid and OFD holders with l_pid -1, or F_OFD_GETLK (query="ofd"); a family without one
    (flock) by trying a non-blocking lock of its own.
    """
    return run_in_child(_query_from_a_new_description, os.fspath(path), _entry(family), kind, start, length,
                        _entry(query), flags, timeout=timeout)


_FIRST_LOOK, _LAST_LOOK = 0.0001, 0.002  # seen_waiting's pauses between looks: doubled from the first to the last


def seen_waiting(path, pid: int, timeout: float = DEFAULT_DEADLINE) -> bool | None:
    """Whether the kernel lists a waiter for pid, asked again until it does or the timeout passes: a child on a
    slow machine (an emulated kernel) may not have reached its lock call when the case looks. The kernel offers no
    event to wait for. None where it cannot tell."""
    end, pause = time.monotonic() + timeout, _FIRST_LOOK
    while True:
        listed = waiters(path, pid)
        if listed is None:
            return None
        if listed:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(pause)  # short at first: a forked waiter reaches its lock call within a millisecond or two
        pause = min(pause * 2, _LAST_LOOK)


class Observer:
    """holder(), asked of one helper process (harness.children.Helper) made once for many questions: a module of
    cases pays for one fork, not one per question. Each question is the same as holder()'s: from a process other
    than the case's, through a description of its own opened for the question and closed after it, so the helper
    holds no lock and no descriptor between questions. The helper names families as the registry did when it was
    made; a family registered since, or another object under a registered name, is asked about as holder() does.
    Where the leak check cannot list children cheaply (it would run ps(1) before and after every case while the
    helper lives), there is no helper and every question is holder()'s own. Close it (or use it as a context
    manager)."""

    def __init__(self) -> None:
        self._families = dict(_registry)  # the registry the helper inherits with the fork
        self._helper = Helper() if process.children_listed_cheaply() else None

    def holder(self, path, family: Family | str, kind: str = "write", start: int = 0, length: int = 0, *,
               query: Family | str = "posix", flags: int = os.O_RDWR, timeout: float = DEFAULT_DEADLINE) -> Held | None:
        """What conflicts with a `kind` lock on the range, as holder() says it."""
        family, query = _entry(family), _entry(query)
        if self._helper is None or self._families.get(family.name) is not family \
                or self._families.get(query.name) is not query:
            return holder(path, family, kind, start, length, query=query, flags=flags, timeout=timeout)
        # An absolute path: the helper's working directory is the one it was made in.
        return self._helper.call(_query_by_name, os.path.abspath(path), family.name, kind, start, length, query.name,
                                 flags, timeout=timeout)

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
