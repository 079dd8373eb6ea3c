"""Lock semantics across close, fork and descriptor passing: OFD, classic POSIX and flock.

The seed's headline (seed 001): a classic POSIX lock belongs to the process and dies when the process closes
*any* descriptor of the file, one received over a socket included; an OFD or flock lock belongs to the open file
description and dies with its last descriptor. Every check asks from a third process (conformance.locks.holder,
asked of one helper process for the module: conformance.locks.Observer), so looking never changes what is held.

Anchors: POSIX.1-2024 XSH fcntl() (F_SETLK, F_OFD_SETLK) and close(), Linux fcntl(2) "Open file description
locks", flock(2), fstests generic/478 (t_ofd_locks), FreeBSD tests/sys/file/flock_helper.c (run by
flock_test.sh; cited by its test numbers).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import shutil
import signal
import socket
import threading
import time

import pytest

from conformance import locks
from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.harness.barriers import BarrierTimeout, Event
from conformance.harness.children import DEFAULT_DEADLINE, Child, Exec, run_in_child
from conformance.harness.deadlines import deadline

from ._support import data_file, errno_name, free_pid, require_lock_family
from .conftest import require

SEED = "seed 001: classic POSIX locks are released by any close; OFD locks belong to the description"
POSIX_FCNTL = "POSIX.1-2024 XSH fcntl(): locks are released on any close of the file by the process"
POSIX_OFD = "POSIX.1-2024 XSH fcntl(): F_OFD_SETLK, owned by the open file description"
LINUX_OFD = "Linux fcntl(2): Open file description locks (non-POSIX)"
FLOCK_HELPER = "FreeBSD tests/sys/file/flock_helper.c"
FLOCK_2 = "flock(2): locks are associated with the open file description"

# A case about one family names it; the others choose families by property (locks.families) and are parametrised by
# every registered family that has it, in registration order, the family's name as the id (ids=str).
CLASSIC, OFD, FLOCK = locks.family("posix"), locks.family("ofd"), locks.family("flock")
DESCRIPTION_OWNED = locks.families(owner="description")


@pytest.fixture
def lockfile(workdir):
    fd = data_file(workdir, "locked", b"\0" * 64)
    yield workdir / "locked", fd
    try:
        os.close(fd)
    except OSError:
        pass  # the case closed it on purpose


@pytest.fixture(scope="module")
def observer():
    """Who holds what, asked of one helper process for the module's cases (a fork for each question costs more than
    most cases): a process other than the case's, with a description of its own for each question."""
    with locks.Observer() as asking:
        yield asking


def _another_descriptor(path, fd: int, how: str) -> int:
    """A second descriptor of the same file: its own open, a dup, or one received over a socket."""
    if how == "another_open":
        return os.open(path, os.O_RDWR)
    if how == "dup":
        return os.dup(fd)
    require("scm_rights")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Another process opens and sends it: a close in this process would itself drop a classic lock.
        with Child(_open_and_send, os.fspath(path), a) as child:
            child.join()
        return rights.recv_fds(b, 1).take()[0]
    finally:
        a.close()
        b.close()


def _open_and_send(path: str, sock) -> None:
    fd = os.open(path, os.O_RDWR)
    rights.send_fds(sock, [fd])
    os.close(fd)


HOW = ["another_open", "dup", "received_over_a_socket"]


# ---- close --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
@pytest.mark.refs(SEED, POSIX_FCNTL, "APUE 3e 14.3: 'when a descriptor is closed, any locks on the file ... released'")
def test_classic_lock_is_released_by_closing_any_descriptor_of_the_file(lockfile, how, observer):
    require_lock_family(CLASSIC)
    path, fd = lockfile
    CLASSIC.lock(fd, "write", 0, 10)
    other = _another_descriptor(path, fd, how)
    try:
        held = observer.holder(path, CLASSIC)
        assert held is not None and held.pid == os.getpid(), f"the classic lock is not held as taken: {held}"
    finally:
        os.close(other)
    held = observer.holder(path, CLASSIC)
    assert held is None, f"closing a {how} descriptor left the process's classic lock in place: {held}"


@pytest.mark.parametrize("family", DESCRIPTION_OWNED, ids=str)
@pytest.mark.parametrize("how", HOW)
@pytest.mark.refs(SEED, POSIX_OFD, LINUX_OFD, FLOCK_2)
def test_description_lock_survives_the_close_of_another_descriptor(lockfile, family, how, observe, observer):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "write")
    os.close(_another_descriptor(path, fd, how))
    held = observer.holder(path, family)
    assert held is not None, f"closing a {how} descriptor released the {family} lock of another description"
    if family.queryable:
        observe("holder_pid", held.pid)  # as F_GETLK reports it: OFD holders have no process, -1 expected


@pytest.mark.parametrize("family", DESCRIPTION_OWNED, ids=str)
@pytest.mark.refs(SEED, POSIX_OFD, LINUX_OFD, FLOCK_2)
def test_description_lock_is_released_by_the_last_close_of_its_description(lockfile, family, observer):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "write")
    copy = os.dup(fd)
    os.close(fd)
    try:
        assert observer.holder(path, family) is not None, "the lock went with the first of two descriptors"
    finally:
        os.close(copy)
    assert observer.holder(path, family) is None, f"the {family} lock outlived the last descriptor of its description"


# ---- fork ---------------------------------------------------------------------------------------------------------

def _close_in_child(fd: int) -> None:
    os.close(fd)  # a child's own copy of the descriptor table


def _unlock_in_child(fd: int, family: locks.Family) -> None:
    family.unlock(fd)


@pytest.mark.parametrize("family", DESCRIPTION_OWNED, ids=str)
@pytest.mark.refs(LINUX_OFD + ": shared across fork", FLOCK_2 + ": duplicates share the lock", POSIX_OFD)
def test_description_lock_is_shared_with_a_forked_child(lockfile, family, observer):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "write")
    with Child(_close_in_child, fd) as child:
        child.join()
    assert observer.holder(path, family) is not None, "a child's close and exit released the parent's lock"
    with Child(_unlock_in_child, fd, family) as child:
        child.join()
    assert observer.holder(path, family) is None, "the child's unlock through the shared description did not release it"


def _inherited_fd_locks(fd: int) -> str:
    """In a forked child: try the parent's range through the inherited descriptor (not an inherited lock)."""
    try:
        CLASSIC.lock(fd, "write", 0, 10)
    except OSError:
        return "refused"
    return "granted"


@pytest.mark.refs(POSIX_FCNTL + "; fork(): 'Record locks set by the parent process shall not be inherited'",
                  "Linux fcntl(2): record locks are not inherited by a child created via fork")
def test_classic_locks_are_not_inherited_by_a_forked_child(lockfile, observer):
    require_lock_family(CLASSIC)
    path, fd = lockfile
    CLASSIC.lock(fd, "write", 0, 10)
    with Child(_inherited_fd_locks, fd) as child:
        assert child.join() == "refused", "the child could lock the parent's range: the lock was inherited"
    held = observer.holder(path, CLASSIC)
    assert held is not None and held.pid == os.getpid(), f"the child's exit changed the parent's lock: {held}"


# ---- descriptor passing -------------------------------------------------------------------------------------------

def _lock_and_send(path: str, family: locks.Family, sock) -> None:
    fd = os.open(path, os.O_RDWR)
    family.lock(fd, "write")
    rights.send_fds(sock, [fd])
    os.close(fd)  # and then exit: only the copy in flight keeps the description, and its lock, alive


@pytest.mark.parametrize("family", DESCRIPTION_OWNED, ids=str)
@pytest.mark.refs(SEED, POSIX_OFD, FLOCK_2, "POSIX.1-2024 XBD <sys/socket.h> SCM_RIGHTS")
def test_description_lock_travels_with_a_passed_descriptor(lockfile, family, observer):
    require_lock_family(family)
    require("scm_rights")
    path, _ = lockfile
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with Child(_lock_and_send, os.fspath(path), family, a) as child:
            child.join()  # the sender has exited
        with rights.recv_fds(b, 1) as got:
            assert len(got.fds) == 1
            held = observer.holder(path, family)
            assert held is not None, f"the {family} lock died with its sender although its description lives on"
            family.unlock(got.fds[0])
            assert observer.holder(path, family) is None, "the receiver could not release the lock it was sent"
    finally:
        a.close()
        b.close()


@pytest.mark.refs(SEED + " (the headline: closing a received descriptor drops the receiver's classic lock)",
                  POSIX_FCNTL)
def test_classic_lock_vanishes_when_the_receiver_closes_its_received_copy(lockfile, observer):
    require_lock_family(CLASSIC)
    path, fd = lockfile
    CLASSIC.lock(fd, "write", 0, 10)
    received = _another_descriptor(path, fd, "received_over_a_socket")
    try:
        assert observer.holder(path, CLASSIC) is not None, "receiving a descriptor released the classic lock"
    finally:
        os.close(received)  # a descriptor of the same file, from another process, never used for locking
    assert observer.holder(path, CLASSIC) is None, "the classic lock survived the close of the received descriptor"


# ---- conflicts ----------------------------------------------------------------------------------------------------

def _conflicts(fd: int, family: locks.Family, kind: str, start: int = 0, length: int = 0) -> bool:
    """Try a non-blocking lock; True if refused as a conflict (the lock is dropped again if granted)."""
    try:
        family.lock(fd, kind, start, length)
    except (BlockingIOError, PermissionError):  # EAGAIN/EWOULDBLOCK or EACCES: both mean "held elsewhere"
        return True
    family.unlock(fd, start, length)
    return False


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("read", "read", False), ("read", "write", True), ("write", "read", True), ("write", "write", True)])
@pytest.mark.refs(LINUX_OFD, "Linux tools/testing/selftests/filelock/ofdlocks.c", POSIX_OFD)
def test_ofd_locks_of_two_descriptions_in_one_process(lockfile, first, second, expected):
    require_lock_family(OFD)
    path, fd = lockfile
    other = os.open(path, os.O_RDWR)
    try:
        OFD.lock(fd, first, 0, 10)
        got = _conflicts(other, OFD, second, 5, 10)
        assert got == expected, f"OFD {first} then {second} through two descriptions: conflict={got}"
    finally:
        os.close(other)


@pytest.mark.parametrize("order", ["ofd_first", "classic_first"])
@pytest.mark.parametrize("where", ["one_descriptor", "two_descriptions"])
@pytest.mark.refs(LINUX_OFD + ": OFD and classic locks conflict even in one process", "LTP fcntl36",
                  "XNU tests/lockf_basic.c")
def test_ofd_and_classic_locks_conflict_in_one_process(lockfile, order, where):
    require_lock_family(OFD)
    require_lock_family(CLASSIC)
    path, fd = lockfile
    other = fd if where == "one_descriptor" else os.open(path, os.O_RDWR)
    try:
        first, second = (OFD, CLASSIC) if order == "ofd_first" else (CLASSIC, OFD)
        first.lock(fd, "write", 0, 10)
        assert _conflicts(other, second, "write", 0, 10), f"a {second} write lock was granted over a {first} one"
    finally:
        if other != fd:
            os.close(other)


@pytest.mark.refs(POSIX_FCNTL + ": a process's own locks never conflict; adjacent or overlapping ranges merge",
                  "XNU tests/lockf_basic.c (coalescing)")
def test_classic_locks_of_one_process_never_conflict_and_merge(lockfile, observe, observer):
    require_lock_family(CLASSIC)
    path, fd = lockfile
    other = os.open(path, os.O_RDWR)
    try:
        CLASSIC.lock(fd, "write", 0, 10)
        CLASSIC.lock(other, "write", 5, 10)  # overlaps, through another description: no conflict
        held = observer.holder(path, CLASSIC, "write", 0, 100)
    finally:
        os.close(other)  # (this also releases both: they are the process's)
    observe("merged_range", f"{held.start}+{held.length}" if held else None)
    assert held is not None and (held.start, held.length) == (0, 15), f"the two ranges were not merged: {held}"


@pytest.mark.parametrize("family", locks.families(system_call="fcntl"), ids=str)
@pytest.mark.refs(FLOCK_2 + ": flock and fcntl locks do not interact on Linux local filesystems",
                  "FreeBSD flock(2): flock and fcntl locks interact", f"{FLOCK_HELPER}: test 15")
def test_flock_and_fcntl_locks_interact_the_same_way_in_both_orders(lockfile, family, observe):
    require_lock_family(FLOCK)
    require_lock_family(family)
    path, fd = lockfile
    answers = []
    for order in ("flock_first", "fcntl_first"):
        other = os.open(path, os.O_RDWR)
        try:
            if order == "flock_first":
                FLOCK.lock(fd, "write")
                answers.append(_conflicts(other, family, "write", 0, 10))
                FLOCK.unlock(fd)
            else:
                family.lock(fd, "write", 0, 10)
                answers.append(_conflicts(other, FLOCK, "write"))
                family.unlock(fd, 0, 10)
        finally:
            os.close(other)  # a classic lock of this process goes with it, which is fine: the round is over
    observe("flock_vs_fcntl", "conflicting" if answers[0] else "independent")
    assert answers[0] == answers[1], f"flock then {family}: conflict={answers[0]}; {family} then flock: {answers[1]}"


# ---- F_GETLK and F_OFD_GETLK ------------------------------------------------------------------------------------

def _hold_until_told(path: str, family: locks.Family, start: int, length: int, held: Event, go: Event) -> int:
    """In a child: write-lock the range, say so, wait for the word, then exit without unlocking."""
    fd = os.open(path, os.O_RDWR)
    family.lock(fd, "write", start, length)
    held.set()
    go.wait()
    return os.getpid()


@pytest.mark.parametrize("family", locks.families(queryable=True), ids=str)
@pytest.mark.refs(POSIX_FCNTL + ": F_GETLK returns the blocking lock's type, range and l_pid",
                  f"{FLOCK_HELPER}: test 4", "Linux fcntl(2): OFD holders are reported with l_pid -1",
                  "XNU tests/lockf_basic: OFD waiter l_pid")
def test_getlk_reports_the_holders_type_range_and_pid(lockfile, family, observe):
    require_lock_family(family)
    path, fd = lockfile
    with Event() as held, Event() as done, \
            Child(_hold_until_told, os.fspath(path), family, 10, 10, held, done) as child:
        held.wait()
        try:
            seen = CLASSIC.query(fd, "write", 0, 100)  # F_GETLK, which every fcntl lock answers to
            seen_own = family.query(fd, "write", 0, 100)  # the family's own query command
        finally:
            done.set()
        pid = child.join()
    assert seen is not None, "F_GETLK saw no lock over a range another process holds"
    assert (seen.kind, seen.start, seen.length) == ("write", 10, 10), f"F_GETLK reported {seen}"
    observe("getlk_pid", "holder" if seen.pid == pid else seen.pid)
    if family.owner == "process":
        assert seen.pid == pid, f"F_GETLK named pid {seen.pid}, the holder is {pid}"
    else:
        assert seen_own is not None and (seen_own.start, seen_own.length) == (10, 10), (
            f"{family.query_command}: {seen_own}")
        observe(f"{family}_getlk_pid", seen_own.pid)
        assert seen_own.pid == -1, f"{family.query_command} reported l_pid {seen_own.pid}; fcntl(2) says -1"
        assert seen.pid != pid, f"a lock of an open file description ({family}) was reported as the process's own"


@pytest.mark.parametrize("command", ["setlk", "getlk"])
@pytest.mark.refs(LINUX_OFD + ": l_pid must be 0 (EINVAL)", "XNU bsd/kern/kern_descrip.c (l_pid not checked)")
def test_ofd_command_with_a_nonzero_l_pid(lockfile, command, observe, observer):
    require_lock_family(OFD)
    path, fd = lockfile
    other = os.open(path, os.O_RDWR)
    try:
        if command == "getlk":
            OFD.lock(other, "write", 0, 10)  # something for the query to report
        try:
            if command == "setlk":
                OFD.lock(fd, "write", 0, 10, pid=1)
            else:
                seen = OFD.query(fd, "write", 0, 10, pid=1)
        except OSError as e:
            observe("nonzero_l_pid", f"refused:{errno_name(e)}")
            assert e.errno == errno.EINVAL, f"F_OFD_{command.upper()} with l_pid 1: {errno_name(e)}, not EINVAL"
            return
        observe("nonzero_l_pid", "accepted")
        # Accepted, the command must still do its job: the lock is taken, or the query reports the holder.
        if command == "setlk":
            assert observer.holder(path, OFD) is not None, "F_OFD_SETLK with l_pid 1 succeeded but took no lock"
        else:
            assert seen is not None and (seen.start, seen.length) == (0, 10), f"F_OFD_GETLK with l_pid 1: {seen}"
    finally:
        os.close(other)


@pytest.mark.refs("Linux tools/testing/selftests/filelock/ofdlocks.c: F_UNLCK query",
                  "Linux fcntl(2) F_OFD_GETLK")
def test_ofd_getlk_with_f_unlck_asks_about_ones_own_description(lockfile, observe):
    require_lock_family(OFD)
    path, fd = lockfile
    other = os.open(path, os.O_RDWR)
    try:
        OFD.lock(fd, "read", 0, 10)
        OFD.lock(other, "read", 20, 10)  # compatible, through another description
        try:
            seen = OFD.query(fd, "unlock", 0, 100)
        except OSError as e:
            observe("f_unlck_query", f"refused:{errno_name(e)}")
            assert e.errno == errno.EINVAL, f"an F_UNLCK query: {errno_name(e)}"
            return
    finally:
        os.close(other)
    if seen is None:
        observe("f_unlck_query", "nothing")
        return
    observe("f_unlck_query", "own_lock" if (seen.start, seen.length) == (0, 10) else "other_lock")
    assert (seen.kind, seen.start, seen.length) == ("read", 0, 10), f"the F_UNLCK query reported {seen}, not own lock"


# ---- fstests generic/478: who may close what ---------------------------------------------------------------------

# The lock is [0, 10); the second lock asked about in another process overlaps it, partly, or not at all.
RANGES = {"overlapping": (0, 10), "partly_overlapping": (5, 10), "disjoint": (20, 10)}
KIND_PAIRS = [("write", "write"), ("write", "read"), ("read", "write"), ("read", "read")]
SCENARIOS = ["child_closes", "thread_closes", "dup_then_close"]
# Every family a query command asks about, setting and asking. generic/478 tests OFD locks (t_ofd_locks), classic
# ones are the contrast: the families owned by a description come first, as there.
QUERIED = sorted(locks.families(queryable=True), key=lambda family: family.owner != "description")


def _generic_478_params():
    for setter in QUERIED:
        for getter in QUERIED:
            for held_kind, asked_kind in KIND_PAIRS:
                modes = ["read_write"] + (["read_only"] if held_kind == "read" else [])
                for span in RANGES:
                    for mode in modes:
                        for scenario in SCENARIOS:
                            yield pytest.param(setter, getter, held_kind, asked_kind, span, mode, scenario,
                                               id=f"{setter}-{getter}-{held_kind}-{asked_kind}-{span}-{mode}-{scenario}")


def _close_in_thread(fd: int) -> None:
    thread = threading.Thread(target=os.close, args=(fd,))  # the same descriptor table
    thread.start()
    thread.join(DEFAULT_DEADLINE)
    assert not thread.is_alive()


def _close_then_ask(fd: int, path: str, kind: str, start: int, length: int, query: locks.Family, flags: int):
    """In a child: close the inherited descriptor (no lock of the parent's is this process's to drop), then ask
    through a description of its own what conflicts."""
    os.close(fd)
    fd = os.open(path, flags)
    try:
        return query.query(fd, kind, start, length)
    finally:
        os.close(fd)


def _lock_survives(setter: locks.Family, scenario: str) -> bool:
    if scenario == "child_closes":
        return True  # neither the description nor the owning process lost anything
    if scenario == "thread_closes":
        return False  # the process closed the description's last descriptor
    # dup then close: the description lives on; the process closed a descriptor
    return setter.owner == "description"


@pytest.mark.parametrize(("setter", "getter", "held_kind", "asked_kind", "span", "mode", "scenario"),
                         list(_generic_478_params()))
@pytest.mark.refs("fstests generic/478 (src/t_ofd_locks.c)", LINUX_OFD, POSIX_FCNTL)
def test_generic_478_lock_after_a_close(workdir, setter, getter, held_kind, asked_kind, span, mode, scenario,
                                        observer):
    require_lock_family(setter)  # the classic half of the matrix runs where OFD locks do not exist
    require_lock_family(getter)
    flags = os.O_RDWR if mode == "read_write" else os.O_RDONLY
    path = workdir / "locked"
    path.write_bytes(b"\0" * 64)
    fd = os.open(path, flags)
    closed = False
    try:
        setter.lock(fd, held_kind, 0, 10)
        start, length = RANGES[span]
        if scenario == "child_closes":  # the child that closed is the other process that asks
            seen = run_in_child(_close_then_ask, fd, os.fspath(path), asked_kind, start, length, getter, flags)
        else:
            if scenario == "thread_closes":
                _close_in_thread(fd)
                closed = True
            else:
                os.close(os.dup(fd))
            seen = observer.holder(path, setter, asked_kind, start, length, query=getter, flags=flags)
    finally:
        if not closed:
            os.close(fd)
    conflict = held_kind == "write" or asked_kind == "write"
    expected = _lock_survives(setter, scenario) and conflict and span != "disjoint"
    assert (seen is not None) == expected, (
        f"{asked_kind} query over {span} after {scenario}: {'held ' + str(seen) if seen else 'free'}, expected "
        f"{'held' if expected else 'free'}")
    if seen is not None:
        assert (seen.kind, seen.start, seen.length) == (held_kind, 0, 10), f"the lock is reported as {seen}"


# ---- blocking -----------------------------------------------------------------------------------------------------

# Where the kernel cannot list lock waiters, how long a waiter must stay blocked before the case calls it blocked.
# Where it can (Linux /proc/locks), the case waits for the listing instead: a listed waiter is asleep in the kernel.
BLOCK_WINDOW = 0.2
# How often the case looks for an answer or the listing: at once, then FIRST_POLL doubled up to WAITER_POLL (a forked
# waiter reaches its lock call within a millisecond or two; a fixed 2 ms poll would cost every case 2 ms).
FIRST_POLL = 0.0001
WAITER_POLL = 0.002


def _lock_and_report(path: str, family: locks.Family, start: int, length: int, report: Event) -> str:
    fd = os.open(path, os.O_RDWR)
    try:
        family.lock(fd, "write", start, length, wait=True)
    except OSError as e:
        report.set(errno_name(e).encode())
        return errno_name(e)
    report.set(b"granted")
    return "granted"


def _answer_or_blocked(path, child: Child, report: Event, listed: int = 1) -> bytes | None:
    """The answer the waiting child reported first, or None once it is blocked: listed by the kernel as waiting
    (`listed` waiters counted as locks.waiters counts them), or, where the kernel cannot say, silent for
    BLOCK_WINDOW. A listed waiter has passed the kernel's conflict and deadlock checks and sleeps."""
    if locks.waiters(path, child.pid) is None:
        try:
            return report.wait(BLOCK_WINDOW, peer=child)
        except BarrierTimeout:
            return None
    end, poll = time.monotonic() + DEFAULT_DEADLINE, 0.0
    while True:
        try:
            return report.wait(poll, peer=child)
        except BarrierTimeout:
            pass
        if locks.waiters(path, child.pid) >= listed:
            return None
        assert time.monotonic() < end, f"the waiter neither answered nor was listed as waiting in {DEFAULT_DEADLINE:g}s"
        poll = min(max(poll * 2, FIRST_POLL), WAITER_POLL)


def _assert_blocked(path, child: Child, report: Event, listed: int = 1) -> None:
    early = _answer_or_blocked(path, child, report, listed)
    assert early is None, f"the waiter did not block: {early!r}"


@pytest.mark.race("F_SETLKW racing the holder's unlock")
@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.refs(POSIX_FCNTL + ": F_SETLKW waits", LINUX_OFD + ": F_OFD_SETLKW", FLOCK_2,
                  f"{FLOCK_HELPER}: test 12 (there the holder exits)")
def test_a_waiting_lock_blocks_while_held_and_is_granted_on_release(lockfile, family):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "write", 0, 10)
    with Event() as report, Child(_lock_and_report, os.fspath(path), family, 0, 10, report) as child:
        _assert_blocked(path, child, report)
        family.unlock(fd, 0, 10)
        assert report.wait() == b"granted", "the waiter was not granted the lock on release"
        assert child.join() == "granted"


class Interrupted(Exception):
    pass


def _interrupted_wait(path: str, family: locks.Family, own_timer: bool) -> str:
    """Block on a held lock until SIGALRM arrives; Python runs a handler only when the call returned EINTR.
    own_timer: where the kernel cannot list waiters, the child arms the signal itself after BLOCK_WINDOW."""
    def handler(signum, frame):
        raise Interrupted

    signal.signal(signal.SIGALRM, handler)
    fd = os.open(path, os.O_RDWR)
    if own_timer:
        signal.setitimer(signal.ITIMER_REAL, BLOCK_WINDOW)
    try:
        family.lock(fd, "write", 0, 10, wait=True)
    except Interrupted:
        return "EINTR"
    except OSError as e:
        return errno_name(e)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return "granted"


@pytest.mark.race("a signal racing a blocked F_SETLKW")
@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.refs(POSIX_FCNTL + ": F_SETLKW ... interrupted by a signal ... shall fail with EINTR",
                  f"{FLOCK_HELPER}: test 3", "LTP flock07", "PEP 475 (a raising handler ends the retried call)")
def test_a_waiting_lock_interrupted_by_a_signal_fails(lockfile, family):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "write", 0, 10)
    listing = locks.waiters(path, os.getpid()) is not None
    with Child(_interrupted_wait, os.fspath(path), family, not listing) as child:
        if listing:  # signal the waiter once the kernel lists it as asleep in the lock call
            assert locks.seen_waiting(path, child.pid), "the waiter was never listed as waiting"
            os.kill(child.pid, signal.SIGALRM)
        outcome = child.join()
    assert outcome == "EINTR", f"a signal during a waiting {family} lock: {outcome}"


def _cycle_member(path: str, family: locks.Family, mine: int, wanted: int, held: Event, go: Event, done: Event) -> str:
    fd = os.open(path, os.O_RDWR)
    family.lock(fd, "write", mine, 1)
    held.set()
    go.wait()
    try:
        family.lock(fd, "write", wanted, 1, wait=True)
        outcome = "granted"
    except OSError as e:
        outcome = errno_name(e)
    done.set(outcome.encode())
    return outcome  # and exit, releasing this member's locks so that the rest of the cycle unwinds


@pytest.mark.race("concurrent lockers closing a cycle")
@pytest.mark.parametrize("family", locks.families(ranges=True), ids=str)
@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.refs(POSIX_FCNTL + ": EDEADLK", f"{FLOCK_HELPER}: test 5 (two processes)",
                  "LTP fcntl17 (a ring of three processes)",
                  LINUX_OFD + ": no deadlock detection for OFD locks")
def test_a_lock_cycle(lockfile, family, size, observe):
    """n processes each hold byte i and wait for byte i+1: the last one closes the cycle."""
    require_lock_family(family)
    path, _ = lockfile
    events = [(Event(), Event(), Event()) for _ in range(size)]
    members = []
    try:
        for i, (held, go, done) in enumerate(events):
            members.append(Child(_cycle_member, os.fspath(path), family, i, (i + 1) % size, held, go, done))
            held.wait()
        # A member is blocked once the kernel lists one more waiter for it than before its word: waiters for a lock
        # of a description (OFD) belong to no process and are listed with pid -1, so the earlier members count too.
        def one_more(member: Child) -> int:
            return (locks.waiters(path, member.pid) or 0) + 1

        for member, (_, go, done) in zip(members[:-1], events[:-1]):
            listed = one_more(member)
            go.set()
            _assert_blocked(path, member, done, listed)
        last_go, last_done = events[-1][1], events[-1][2]
        listed = one_more(members[-1])
        last_go.set()
        answer = _answer_or_blocked(path, members[-1], last_done, listed)  # detection answers at once
        if answer is None:
            closing = "blocked"
            members[-1].kill()  # break the cycle ourselves: its locks go with it
        else:
            closing = answer.decode()
        observe("deadlock", "detected" if closing == "EDEADLK" else closing)
        outcomes = [m.join() for m in members[:-1]]
        assert outcomes == ["granted"] * (size - 1), f"the rest of the cycle did not unwind: {outcomes}"
        if family.detects_deadlock:
            assert closing == "EDEADLK", f"closing a {size}-process cycle of {family} locks: {closing}, not EDEADLK"
    finally:
        for member in members:
            member.kill()
        for trio in events:
            for event in trio:
                event.close()


# ---- exec ---------------------------------------------------------------------------------------------------------

# The new program: a POSIX shell whose builtins say that it runs (a byte on its standard output, the report pipe)
# and wait for the word (a line on its standard input), so that the exec costs a shell's start, not an interpreter's.
_AFTER_EXEC = "printf E && read -r word"


def _shell() -> str:
    """The POSIX shell, found on the path of the standard utilities (confstr _CS_PATH), else /bin/sh."""
    try:
        standard = os.confstr("CS_PATH")
    except (AttributeError, ValueError, OSError):
        standard = None
    return shutil.which("sh", path=standard or None) or "/bin/sh"


def _lock_then_exec(path: str, family: locks.Family, keep: bool, report_w: int, go_r: int) -> Exec:
    """In a forked child: lock the file through a descriptor of its own, say so, wait for the word, then become the
    shell, that descriptor kept across the exec (keep) or closed by it (FD_CLOEXEC)."""
    target = os.stat(path)
    for fd, (device, inode, _) in fdlist.open_fds().items():
        if (device, inode) == (target.st_dev, target.st_ino):
            os.close(fd)  # the parent's, copied by the fork: the exec would close it, and a classic lock with it
    fd = os.open(path, os.O_RDWR)
    family.lock(fd, "write", 0, 10)
    os.set_inheritable(fd, keep)
    os.write(report_w, b"L")
    os.read(go_r, 1)
    os.dup2(go_r, 0)
    os.dup2(report_w, 1)
    return Exec(_shell(), ["sh", "-c", _AFTER_EXEC])


@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.parametrize("descriptor", ["inherited", "close_on_exec"])
@pytest.mark.refs("Linux fcntl(2): record locks are preserved across an execve(2)",
                  "POSIX.1-2024 XSH exec: file descriptors with FD_CLOEXEC are closed",
                  LINUX_OFD, FLOCK_2)
def test_locks_across_execve(lockfile, family, descriptor, observe, observer):
    require_lock_family(family)
    path, _ = lockfile
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    try:
        with Child(_lock_then_exec, os.fspath(path), family, descriptor == "inherited", report_w, go_r) as child:
            os.close(report_w)
            os.close(go_r)
            report_w = go_r = -1
            assert _read_byte(report_r, child) == b"L", "the locker did not start"
            assert observer.holder(path, family) is not None, "the lock was not held before exec"
            os.write(go_w, b"x")
            assert _read_byte(report_r, child) == b"E", "the new image did not start"
            kept = observer.holder(path, family) is not None
            os.write(go_w, b"\n")
            assert child.join() == 0, "the new image did not end well"
    finally:
        for fd in (report_r, report_w, go_r, go_w):
            if fd >= 0:
                os.close(fd)
    observe("after_exec", "kept" if kept else "released")
    if descriptor == "close_on_exec":
        # The exec closed the file's only descriptor: the description died, and the process closed a descriptor.
        assert not kept, f"a {family} lock survived the close-on-exec of its only descriptor"
    else:
        # Same process, same open description: nothing the lock belongs to went away.
        assert kept, f"a {family} lock was lost across execve although its descriptor stayed open"


def _read_byte(fd: int, child: Child, timeout: float = DEFAULT_DEADLINE) -> bytes:
    """The next byte the locker or its new image writes; where it ended without one, its own error if it raised."""
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, "no word from the exec'd process within the deadline"
    byte = os.read(fd, 1)
    if not byte:
        child.join()  # raises what went wrong in it, if anything did
    return byte


# ---- ranges -------------------------------------------------------------------------------------------------------

def _held_ranges(observer: locks.Observer, path, family: locks.Family, spans) -> list:
    """For each (start, length): is any of it held, as another process sees it?"""
    return [observer.holder(path, family, "write", start, length) is not None for start, length in spans]


@pytest.mark.parametrize("family", locks.families(ranges=True), ids=str)
@pytest.mark.refs(POSIX_FCNTL + ": unlocking part of a range splits it",
                  "XNU tests/lockf_basic.c (unlock in the middle)")
def test_unlocking_the_middle_splits_a_lock(lockfile, family, observer):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "write", 0, 30)
    family.unlock(fd, 10, 10)
    assert _held_ranges(observer, path, family, [(0, 10), (10, 10), (20, 10)]) == [True, False, True]


@pytest.mark.parametrize("family", locks.families(ranges=True), ids=str)
@pytest.mark.refs(POSIX_FCNTL + ": adjacent locks of one owner coalesce", "XNU tests/lockf_basic.c (coalescing)")
def test_adjacent_ranges_of_one_owner_merge(lockfile, family, observe, observer):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "write", 0, 10)
    family.lock(fd, "write", 10, 10)
    held = observer.holder(path, family, "write", 0, 100)
    assert held is not None and (held.start, held.length) == (0, 20), f"adjacent ranges reported as {held}"


@pytest.mark.parametrize("family", locks.families(ranges=True), ids=str)
@pytest.mark.refs(POSIX_FCNTL + ": a new lock of the owner replaces the old type on the range",
                  "XNU tests/lockf_basic.c (downgrade)")
def test_upgrade_and_downgrade_in_place(lockfile, family, observer):
    require_lock_family(family)
    path, fd = lockfile
    family.lock(fd, "read", 0, 10)
    family.lock(fd, "write", 0, 10)
    held = observer.holder(path, family, "read", 0, 10)
    assert held is not None and held.kind == "write", f"after the upgrade: {held}"
    family.lock(fd, "read", 0, 10)
    assert observer.holder(path, family, "read", 0, 10) is None, "a read lock still excludes readers after downgrade"
    held = observer.holder(path, family, "write", 0, 10)
    assert held is not None and held.kind == "read", f"after the downgrade: {held}"


@pytest.mark.parametrize("family", locks.families(ranges=True), ids=str)
@pytest.mark.parametrize("whence", ["SEEK_CUR", "SEEK_END"])
@pytest.mark.refs(POSIX_FCNTL + ": l_whence SEEK_CUR and SEEK_END", "XNU tests/lockf_basic.c (SEEK_END ranges)")
def test_ranges_relative_to_the_offset_and_the_end(lockfile, family, whence, observer):
    require_lock_family(family)
    path, fd = lockfile  # 64 bytes
    os.lseek(fd, 20, os.SEEK_SET)
    start = 0 if whence == "SEEK_CUR" else -10
    family.lock(fd, "write", start, 10, whence=getattr(os, whence))
    expected = (20, 10) if whence == "SEEK_CUR" else (54, 10)
    held = observer.holder(path, family, "write", 0, 0)
    assert held is not None and (held.start, held.length) == expected, f"{whence} lock reported as {held}"


@pytest.mark.parametrize("family", locks.families(ranges=True), ids=str)
@pytest.mark.parametrize("where", ["beyond_end_of_file", "past_2_gib", "negative_length"])
@pytest.mark.refs(POSIX_FCNTL + ": locks may extend beyond EOF; a negative l_len locks before l_start; EOVERFLOW "
                  "only where off_t cannot hold the offset", "glibc tst-ofdlocks (beyond 2 GiB)")
def test_unusual_ranges(lockfile, family, where, observe, observer):
    require_lock_family(family)
    path, fd = lockfile
    start, length, expected = {"beyond_end_of_file": (1000, 10, (1000, 10)),
                               "past_2_gib": (2**31 + 10, 10, (2**31 + 10, 10)),
                               "negative_length": (20, -10, (10, 10))}[where]
    try:
        family.lock(fd, "write", start, length)
    except OSError as e:
        observe("unusual_range", f"refused:{errno_name(e)}")
        raise AssertionError(f"a lock {where} was refused: {errno_name(e)}") from None
    held = observer.holder(path, family, "write", 0, 0)
    observe("unusual_range", f"{held.start}+{held.length}" if held else None)
    assert held is not None and (held.start, held.length) == expected, f"a lock {where} is reported as {held}"


@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.parametrize(("kind", "mode"), [("write", "O_RDONLY"), ("read", "O_WRONLY")])
@pytest.mark.refs(POSIX_FCNTL + ": EBADF if the type does not match the open mode",
                  "flock(2): a lock may be placed on a file opened for reading or writing")
def test_lock_type_against_the_open_mode(workdir, family, kind, mode, observe):
    require_lock_family(family)
    fd = data_file(workdir, "locked", b"\0" * 64, getattr(os, mode))
    try:
        family.lock(fd, kind, 0, 10)
    except OSError as e:
        observe("mismatched_mode", f"refused:{errno_name(e)}")
        assert family.checks_open_mode, f"{family} refused a {kind} lock on an {mode} descriptor: {errno_name(e)}"
        assert e.errno == errno.EBADF, f"a {kind} lock on an {mode} descriptor: {errno_name(e)}, not EBADF"
        return
    finally:
        os.close(fd)
    observe("mismatched_mode", "granted")
    assert not family.checks_open_mode, f"a {family} {kind} lock was granted on an {mode} descriptor"


def _share_then_wait(path: str, held: Event, release: Event) -> None:
    fd = os.open(path, os.O_RDWR)
    FLOCK.lock(fd, "read")
    held.set()
    release.wait()
    os.close(fd)


@pytest.mark.refs(FLOCK_2 + ": converting a lock is not guaranteed to be atomic",
                  f"{FLOCK_HELPER}: test 15")
def test_a_failed_flock_upgrade_may_drop_the_shared_lock(lockfile, observe, observer):
    require_lock_family(FLOCK)
    path, fd = lockfile
    FLOCK.lock(fd, "read")
    with Event() as held, Event() as release, Child(_share_then_wait, os.fspath(path), held, release) as child:
        held.wait()
        with pytest.raises(BlockingIOError):
            FLOCK.lock(fd, "write")  # the other shared holder refuses the upgrade
        release.set()
        child.join()
    still_shared = observer.holder(path, FLOCK, "write") is not None
    observe("failed_upgrade", "kept_shared" if still_shared else "dropped_shared")


# ---- contention -------------------------------------------------------------------------------------------------

WRITERS, RECORDS = 4, 200
RECORD = 32  # bytes, fixed width, so a torn or overlapping append shows as a bad record


def _append_under_lock(path: str, family: locks.Family, who: int) -> None:
    """Append RECORDS records at the end of the file, each under a whole-file write lock of this description."""
    fd = os.open(path, os.O_RDWR)
    try:
        for n in range(RECORDS):
            family.lock(fd, "write", 0, 0, wait=True)
            end = os.fstat(fd).st_size  # read-then-write: only the lock keeps two writers off one offset
            os.sched_yield()  # widen the window the lock must protect, so that a lock that fails to shows up
            os.pwrite(fd, f"writer {who:3d} record {n:5d}".ljust(RECORD - 1).encode() + b"\n", end)
            family.unlock(fd, 0, 0)
    finally:
        os.close(fd)


# Every family among processes; among threads of one process only those owned by a description, as a classic lock
# is the whole process's and cannot keep one of its threads from another.
APPENDERS = [(family, "processes") for family in locks.families()] + [
    (family, "threads") for family in locks.families(owner="description")]


@pytest.mark.race("concurrent lockers appending")
@pytest.mark.parametrize(("family", "actors"), APPENDERS, ids=str)
@pytest.mark.refs("LTP fcntl34 (OFD locks from threads with their own descriptions)", "LTP fcntl36",
                  f"{FLOCK_HELPER}: test 14 (many lockers, data integrity)")
def test_appenders_under_locks_never_corrupt_the_file(workdir, family, actors):
    require_lock_family(family)
    path = workdir / "appended"
    path.write_bytes(b"")
    if actors == "processes":
        children = []
        try:
            for who in range(WRITERS):  # one by one: a fork the system refuses leaves those started to be killed
                children.append(Child(_append_under_lock, os.fspath(path), family, who))
            for child in children:
                child.join(deadline(30))
        finally:
            for child in children:
                child.kill()
    else:
        errors = []

        def run(who: int) -> None:
            try:
                _append_under_lock(os.fspath(path), family, who)
            except BaseException as e:  # reported below, in the case's own thread
                errors.append(e)

        threads = [threading.Thread(target=run, args=(who,)) for who in range(WRITERS)]
        try:
            for thread in threads:
                thread.start()
        finally:  # a thread the system refuses to start leaves those started to be waited for
            for thread in threads:
                if thread.ident is not None:
                    thread.join(deadline(30))
        assert not any(t.is_alive() for t in threads), f"a writer thread did not finish within {deadline(30):g} s"
        assert not errors, f"a writer failed: {errors[0]!r}"
    data = path.read_bytes()
    records = [data[i:i + RECORD] for i in range(0, len(data), RECORD)]
    expected = {f"writer {w:3d} record {n:5d}".ljust(RECORD - 1).encode() + b"\n"
                for w in range(WRITERS) for n in range(RECORDS)}
    assert len(data) == WRITERS * RECORDS * RECORD, f"{len(data)} bytes, {WRITERS * RECORDS * RECORD} expected"
    assert set(records) == expected, f"{len(set(records) ^ expected)} records lost or torn"


# ---- FreeBSD flock_test details ------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", locks.families(queryable=True), ids=str)
@pytest.mark.refs(f"{FLOCK_HELPER}: test 1: F_GETLK on an unlocked range changes only l_type",
                  POSIX_FCNTL + ": if no lock would prevent it, l_type is set to F_UNLCK and the rest left unchanged")
def test_getlk_on_an_unlocked_range_changes_only_l_type(lockfile, family):
    require_lock_family(family)
    _, fd = lockfile
    getlk, _, _ = locks.commands(family)
    request = locks.pack_flock("write", 5, 7, os.SEEK_CUR)
    reply = locks.unpack_flock(fcntl.fcntl(fd, getlk, request))
    sent = locks.unpack_flock(request)
    changed = {name for name in sent if sent[name] != reply[name]}
    assert changed == {"l_type"}, f"F_GETLK on an unlocked range changed {sorted(changed)}: {reply}"
    assert reply["l_type"] == locks.unpack_flock(locks.pack_flock("unlock"))["l_type"]


@pytest.mark.refs(f"{FLOCK_HELPER}: test 10: a bogus l_pid passed to F_SETLK is ignored",
                  POSIX_FCNTL)
def test_a_bogus_l_pid_given_to_f_setlk_is_ignored(lockfile, observer):
    require_lock_family(CLASSIC)
    path, fd = lockfile
    CLASSIC.lock(fd, "write", 0, 10, pid=free_pid())
    held = observer.holder(path, CLASSIC)
    assert held is not None and held.pid == os.getpid(), f"the lock was recorded as {held}, not as this process's"


@pytest.mark.race("F_SETLKW racing the holder's exit")
@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.refs(f"{FLOCK_HELPER}: test 12: F_SETLKW succeeds once the holder exits", POSIX_FCNTL,
                  FLOCK_2)
def test_a_waiting_lock_is_granted_when_the_holder_exits(lockfile, family):
    require_lock_family(family)
    path, _ = lockfile
    with Event() as held, Event() as go, Event() as report, \
            Child(_hold_until_told, os.fspath(path), family, 0, 10, held, go) as holder_process:
        held.wait()
        with Child(_lock_and_report, os.fspath(path), family, 0, 10, report) as waiter:
            _assert_blocked(path, waiter, report)
            go.set()
            holder_process.join()
            assert report.wait() == b"granted", "the waiter was not granted the lock when its holder exited"
            assert waiter.join() == "granted"
