"""Blocked lock waiters: who is woken and granted when a holder changes its locks, deadlock detection when a range
has several blockers, and lockers running concurrently.

A waiter is a process with a description of its own, asleep in F_SETLKW, F_OFD_SETLKW or flock(): one of the
module's helper processes (a fork of this process costs milliseconds), asked by a thread of this process that gets
its answer, or, where the module has none to spare, a child of the case's own. A case knows a waiter still waits
from positive evidence where the kernel lists waiters (conformance/platforms/lock_table.py: once every waiter that
has not answered is listed, each of them is asleep, for a holder's change wakes the waiters it concerns before the
call that made it returns), and elsewhere from a short window of silence. No case sleeps to let something happen.

Anchors: LTP fcntl16 and fcntl36, XNU tests/lockf_basic.c (waiter wakeups, the three families), FreeBSD
tests/sys/file/flock_helper.c tests 6, 13, 14 and 16; POSIX.1-2024 XSH fcntl(); Linux fcntl(2), flock(2).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import select
import signal
import stat
import threading
import time

import pytest

from conformance import locks
from conformance.harness.barriers import BarrierTimeout, Event
from conformance.harness.children import DEFAULT_DEADLINE, Child, ChildDidNotReport, Helper, run_in_child
from conformance.harness.errors import HarnessError
from conformance.platforms import process
from conformance.platforms.lock_table import all_waiters

from ._support import errno_name, require_lock_family

POSIX_FCNTL = "POSIX.1-2024 XSH fcntl(): F_SETLKW waits until the lock can be set"
LINUX_OFD = "Linux fcntl(2): Open file description locks (non-POSIX)"
FLOCK_2 = "flock(2): locks are associated with the open file description"
FREEBSD = "FreeBSD tests/sys/file/flock_helper.c"
XNU = "XNU tests/lockf_basic.c"

RANGED = locks.families(ranges=True)
PROCESS_RANGED = locks.families(owner="process", ranges=True)  # classic record locks: the process owns them
DESCRIPTION_RANGED = locks.families(owner="description", ranges=True)

# Where the kernel lists no waiters, how long a waiter must stay silent before the case calls it still waiting. Not a
# deadline (never scaled): it is the whole evidence there, and kept short for speed.
QUIET_WINDOW = 0.05
# How often a case asks again (the kernel's table, a waiter's pipe) while it waits for positive evidence: from
# FIRST_POLL, doubled each time up to WAITER_POLL, for what it waits for (a forked waiter asleep in the kernel, a woken
# one's answer) mostly takes well under a millisecond and a fixed 2 ms poll made it cost 2 ms.
FIRST_POLL = 0.00005
WAITER_POLL = 0.002


# ---- waiters ------------------------------------------------------------------------------------------------------

_HOLDING: list = []  # in a waiting process: the descriptor of the granted lock it holds until released


def _wait_for_lock(path: str, family_name: str, kind: str, start: int, length: int, flags: int, hold: bool) -> str:
    """In the waiting process (a helper, or a child of the case's own): ask for the lock through a description of
    its own and wait for it; what came of it. A granted lock is dropped at once (its description closed) or, with
    `hold`, kept until _release_the_lock."""
    if _HOLDING:
        raise HarnessError(f"process {os.getpid()} still holds the lock of an earlier wait")
    fd = os.open(path, flags)
    try:
        locks.family(family_name).lock(fd, kind, start, length, wait=True)
    except BaseException as e:
        os.close(fd)
        if isinstance(e, OSError):
            return errno_name(e)
        raise
    if hold:
        _HOLDING.append(fd)
    else:
        os.close(fd)
    return "granted"


def _release_the_lock() -> str:
    """In a helper process: drop the lock _wait_for_lock kept (its description closed)."""
    os.close(_HOLDING.pop())
    return "released"


def _wait_in_child(answer: int, release: int | None, *request) -> str:
    """In a child of the case's own: _wait_for_lock, its answer written to the `answer` pipe; a lock granted to hold
    is kept until a byte comes on the `release` pipe (and then goes with the child)."""
    got = _wait_for_lock(*request)
    os.write(answer, got.encode())
    if release is not None and got == "granted":
        os.read(release, 1)
    return got


class _Helpers:
    """Helper processes (harness Helper) for waiters, made once for the module where the leak check lists children
    cheaply (elsewhere it would run ps(1) at every check while they live), as many as a case has waiters at once. A
    waiter takes an idle one, or forks a child of its own where none is left; a helper that ends a case clean (asked
    nothing more, holding nothing) goes back idle, any other is killed. Nothing of one case reaches another: each wait
    opens a description of its own and the helper closes it before it is idle again."""

    SIZE = 4

    def __init__(self) -> None:
        self._idle: list[Helper] = []
        if process.children_listed_cheaply():
            try:
                for _ in range(self.SIZE):
                    self._idle.append(Helper())
            except BaseException:
                self.close()
                raise

    def take(self) -> Helper | None:
        """An idle helper, None if none is left."""
        while self._idle:
            helper = self._idle.pop()
            if helper.alive:
                return helper
            helper.close(kill=True)
        return None

    def give_back(self, helper: Helper) -> None:
        self._idle.append(helper)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


@pytest.fixture(scope="module")
def _module_helpers():
    helpers = _Helpers()
    try:
        yield helpers
    finally:
        helpers.close()


@pytest.fixture
def helpers(_module_helpers) -> _Helpers:
    """Where a case's waiters come from: the module's helper processes, made before any case's leak check."""
    return _module_helpers


class Waiter:
    """A process waiting for a lock on a description of its own (see _wait_for_lock), which writes its answer to a
    pipe: one of the module's helpers, asked by a thread of this process that blocks until the answer comes, or else
    a child of the case's own; `hold` keeps a granted lock until release(). Close it on every path: a waiter still
    waiting is killed (nothing else ends its wait), a helper that ended clean goes back idle."""

    def __init__(self, helpers: _Helpers, path, family: locks.Family, kind: str, start: int = 0, length: int = 0, *,
                 flags: int = os.O_RDWR, hold: bool = False, name: str | None = None) -> None:
        self.family, self.kind, self.start, self.length, self.hold = family, kind, start, length, hold
        self.name = name or str(family)
        self.answer: bytes | None = None
        self._holding = False
        self._helpers = helpers
        self._error: BaseException | None = None
        self.child: Child | None = None
        self._release: int | None = None
        self._r, answer = os.pipe()  # the answer; end-of-file if the waiting process ended without one
        request = (os.path.abspath(path), str(family), kind, start, length, flags, hold)
        self._helper = helpers.take()
        try:
            if self._helper is None:
                release, self._release = os.pipe() if hold else (None, None)
                try:
                    self.child = Child(_wait_in_child, answer, release, *request)
                finally:
                    os.close(answer)  # the child's copy is the only one: its end shows as end-of-file
                    if release is not None:
                        os.close(release)
            else:
                self._asking = threading.Thread(target=self._ask, args=(answer, *request), daemon=True)
                try:
                    self._asking.start()
                except BaseException:
                    os.close(answer)
                    raise
        except BaseException:
            self._finish(clean=True)  # nothing was asked
            raise

    def _ask(self, answer: int, *request) -> None:
        """In a thread of this process: the helper's answer written to the pipe, or the error of asking it kept. Its
        deadline lies beyond the cases' own (DEFAULT_DEADLINE), which report a waiter that never answers first."""
        try:
            os.write(answer, self._helper.call(_wait_for_lock, *request, timeout=2 * DEFAULT_DEADLINE).encode())
        except BaseException as e:
            self._error = e
        finally:
            os.close(answer)

    def fileno(self) -> int:
        """Readable once the answer is in: select() takes the Waiter itself."""
        return self._r

    def __repr__(self) -> str:
        return f"{self.name} {self.kind} [{self.start}, +{self.length or 'EOF'})"

    def poll(self, timeout: float = 0.0) -> bytes | None:
        """Its answer, if it has given one (within timeout); the error if the waiting process ended without one."""
        if self.answer is None:
            ready, _, _ = select.select([self._r], [], [], timeout)
            if ready:
                got = os.read(self._r, 256)  # one short write
                if not got:
                    self._failed()
                self.answer = got
                self._holding = self.hold and got == b"granted"
        return self.answer

    def _failed(self):
        """Raise what ended the waiting process before it answered."""
        if self.child is not None:
            self.child.join()  # raises what ended it
            raise ChildDidNotReport(f"waiter {self.child.pid} ended without an answer")
        self._asking.join()
        raise self._error or ChildDidNotReport(f"helper {self._helper.pid} gave no answer")

    def release(self) -> None:
        """Let a granted, holding waiter go: its lock is released when this returns."""
        assert self._holding, f"{self} holds no lock to release"
        self._holding = False
        if self.child is not None:
            os.write(self._release, b"!")
            assert self.child.join() == "granted"  # reaped: its lock went with it
        else:
            assert self._helper.call(_release_the_lock) == "released"

    def _finish(self, clean: bool = False) -> None:
        os.close(self._r)
        if self._release is not None:
            os.close(self._release)
        if self._helper is not None:
            if clean and self._helper.alive:
                self._helpers.give_back(self._helper)
            else:
                self._helper.close(kill=True)

    def close(self) -> None:
        """Kill a waiter still waiting, release a lock still held; a helper goes back idle only if it answered and
        let go of its lock."""
        clean = False
        try:
            if self.child is not None:
                self.child.kill()
            elif self._asking.is_alive():  # still asleep in the kernel: only its end ends the wait
                os.kill(self._helper.pid, signal.SIGKILL)
                self._asking.join()
            else:
                self._asking.join()  # it has answered (or failed) and is ending
                if self._error is None:
                    self.poll()  # an answer not read yet: a lock granted to hold is released below
                    if self._holding:
                        self.release()
                    clean = True
        finally:
            self._finish(clean)


@contextlib.contextmanager
def _waiters():
    """A list to append Waiters to, every one closed at the end."""
    made: list[Waiter] = []
    try:
        yield made
    finally:
        failed = []
        for waiter in made:  # every one, whatever the others do
            try:
                waiter.close()
            except BaseException as e:
                failed.append(e)
        if failed:
            raise failed[0]


def _settle(path, pending: list[Waiter], answers: int = 0) -> list[Waiter]:
    """Wait until `answers` of the pending waiters have answered, then until the rest are shown to wait: all listed
    by the kernel as waiting on the file or, where it lists none, silent for QUIET_WINDOW. Returns those that
    answered. The kernel unlists the waiters a change wakes before the call that made it returns, so once every
    waiter that has not answered is listed, none is on its way to an answer."""
    listing = all_waiters(path) is not None
    end = time.monotonic() + DEFAULT_DEADLINE
    quiet_until = None
    poll = FIRST_POLL
    while True:
        answered = [w for w in pending if w.poll() is not None]
        silent = [w for w in pending if w.answer is None]
        if len(answered) >= answers:
            if listing:
                if all_waiters(path) == len(silent):
                    break
            else:
                quiet_until = quiet_until or time.monotonic() + QUIET_WINDOW
                if time.monotonic() >= quiet_until:
                    break
        assert time.monotonic() < end, (
            f"after {DEFAULT_DEADLINE:g}s: answered {answered}, {answers} expected; "
            f"not answered and not all listed as waiting: {silent}")
        # A short bounded wait, not a pause: it ends at once when a silent waiter answers; else the kernel's table
        # is asked again shortly.
        select.select(silent, [], [], poll)
        poll = min(poll * 2, WAITER_POLL)
    return [w for w in pending if w.poll() is not None]


def _grants(waiters: list[Waiter]) -> list[int]:
    """Indexes of the waiters that answered, each answer asserted to be a grant."""
    for w in waiters:
        assert w.answer in (None, b"granted"), f"{w} answered {w.answer!r}"
    return [i for i, w in enumerate(waiters) if w.answer is not None]


def _steps(path, fd: int, holder: locks.Family, waiters: list[Waiter], steps) -> None:
    """All waiters block first; then after each step's changes of the holder's locks exactly the waiters the step
    names have been granted (cumulatively), and the others still wait."""
    _settle(path, waiters)
    assert _grants(waiters) == [], "a waiter was granted while the holder's lock covered its range"
    for changes, granted_after in steps:
        for kind, start, length in changes:
            holder.lock(fd, kind, start, length)
        before = set(_grants(waiters))
        _settle(path, [w for w in waiters if w.answer is None], len(set(granted_after) - before))
        got = _grants(waiters)
        assert got == sorted(granted_after), (
            f"after {changes}: granted {[waiters[i] for i in got]}, expected {[waiters[i] for i in granted_after]}")


# ---- LTP fcntl16: waiters and the holder's changes -----------------------------------------------------------------

W, R, U = "write", "read", "unlock"

# (holder's locks, waiters' read ranges, holder's changes, waiters granted by them); then the holder unlocks all and
# every waiter is granted. Ranges are (start, length), 0 meaning to the end of the file.
FCNTL16 = {
    "1_whole_file_downgraded": ([(W, 0, 0)], [(0, 5), (6, 5)], [(R, 0, 0)], [0, 1]),
    "2_whole_file_relocked_for_writing": ([(W, 0, 0)], [(0, 5), (6, 5)], [(W, 0, 0)], []),
    "3_downgraded_middle_fits_neither": ([(W, 0, 0)], [(2, 3), (6, 3)], [(R, 3, 5)], []),
    "4_downgrade_covers_the_second": ([(W, 0, 0)], [(2, 3), (6, 3)], [(R, 5, 5)], [1]),
    "5_downgrade_covers_the_first": ([(W, 0, 0)], [(3, 5), (5, 6)], [(R, 2, 7)], [0]),
    "6_unlock_covers_the_second": ([(W, 0, 0)], [(2, 3), (6, 3)], [(U, 3, 7)], [1]),
    "7_downgrade_joins_a_read_island": ([(W, 0, 0), (R, 3, 5)], [(2, 3), (6, 3)], [(R, 1, 9)], [0, 1]),
    "8_two_write_islands_downgraded": ([(W, 2, 3), (W, 6, 3)], [(3, 5)], [(R, 1, 5), (R, 5, 5)], [0]),
    "9_two_downgrades_one_for_each": ([(W, 0, 0), (R, 3, 5)], [(2, 3), (6, 3)], [(R, 1, 3), (R, 7, 3)], [0, 1]),
    "10_overlapping_downgrades": ([(W, 0, 0)], [(2, 3), (6, 3)], [(R, 1, 7), (R, 3, 7)], [0, 1]),
    "11_same_range_downgraded": ([(W, 0, 0)], [(3, 5), (3, 5)], [(R, 3, 5)], [0, 1]),
}

# The anchor's three blocks: an ordinary file, a file in the mandatory-locking mode (set-group-ID without group
# execute), and that mode opened O_NONBLOCK (O_NDELAY). Where mandatory locking is gone (Linux 5.15) the mode is an
# ordinary one; where it is enforced, it restricts read(2) and write(2), which these cases never call.
FILE_MODES = {
    "ordinary": (0o600, 0),
    "mandatory_locking_mode": (stat.S_ISGID | 0o600, 0),
    "mandatory_locking_mode_nonblocking": (stat.S_ISGID | 0o600, os.O_NONBLOCK),
}


@pytest.fixture
def tenbytes(workdir):
    """The anchor's file: ten bytes."""
    path = workdir / "locked"
    path.write_bytes(b"tenbytes!\0")
    return path


@pytest.mark.race("waiters woken by a holder's change")
@pytest.mark.parametrize("family", PROCESS_RANGED, ids=str)
@pytest.mark.parametrize("scenario", list(FCNTL16))
@pytest.mark.parametrize("mode", list(FILE_MODES))
@pytest.mark.refs("LTP testcases/kernel/syscalls/fcntl/fcntl16.c (blocks 1-3, cases 1-11)",
                  POSIX_FCNTL + "; a new lock of the owner replaces its old type on the range")
def test_waiters_are_granted_when_the_holder_changes_the_part_they_need(tenbytes, helpers, family, scenario, mode):
    require_lock_family(family)
    held, ranges, changes, granted = FCNTL16[scenario]
    permissions, extra = FILE_MODES[mode]
    os.chmod(tenbytes, permissions)
    fd = os.open(tenbytes, os.O_RDWR | extra)
    try:
        for kind, start, length in held:
            family.lock(fd, kind, start, length)
        with _waiters() as waiters:
            for start, length in ranges:
                waiters.append(Waiter(helpers, tenbytes, family, R, start, length, flags=os.O_RDWR | extra))
            _steps(tenbytes, fd, family, waiters, [
                (changes, granted),
                ([(U, 0, 0)], list(range(len(ranges)))),  # and the rest are granted when the holder lets go
            ])
    finally:
        os.close(fd)


# ---- XNU lockf_basic: waiter wakeups ------------------------------------------------------------------------------

@pytest.fixture
def lockfile(workdir):
    path = workdir / "locked"
    path.write_bytes(b"\0" * 1024)
    fd = os.open(path, os.O_RDWR)
    yield path, fd
    os.close(fd)


@pytest.mark.race("a waiter woken by a partial unlock")
@pytest.mark.parametrize("waiter", RANGED, ids=str)
@pytest.mark.parametrize("holder", RANGED, ids=str)
@pytest.mark.refs(XNU + ": waiter wakeup on partial unlock ('Unlock: region with no locks', 'overlap end')",
                  POSIX_FCNTL, LINUX_OFD + ": OFD and classic locks conflict")
def test_a_waiter_wakes_only_when_an_overlapping_part_is_unlocked(lockfile, helpers, holder, waiter):
    require_lock_family(holder)
    require_lock_family(waiter)
    path, fd = lockfile
    holder.lock(fd, W, 25, 275)  # [25, 300)
    with _waiters() as waiters:
        waiters.append(Waiter(helpers, path, waiter, W, 290, 20))  # wants [290, 310): the holder's tail is in the way
        _steps(path, fd, holder, waiters, [
            ([(U, 300, 100)], []),  # unlocking where nothing is locked changes nothing for it
            ([(U, 250, 100)], [0]),  # unlocking the overlapping tail grants it
        ])


@pytest.mark.race("waiters woken by downgrades")
@pytest.mark.parametrize("waiter", RANGED, ids=str)
@pytest.mark.parametrize("holder", RANGED, ids=str)
@pytest.mark.refs(XNU + ": 'Downgrade / waiter-wakeup test'", POSIX_FCNTL, LINUX_OFD)
def test_downgrading_sub_ranges_wakes_exactly_the_readers_that_fit(lockfile, helpers, holder, waiter):
    require_lock_family(holder)
    require_lock_family(waiter)
    path, fd = lockfile
    holder.lock(fd, W, 0, 500)
    with _waiters() as waiters:
        for start, length in [(0, 100), (200, 100), (400, 200), (50, 400)]:
            waiters.append(Waiter(helpers, path, waiter, R, start, length))
        _steps(path, fd, holder, waiters, [
            ([(R, 200, 100)], [1]),  # a gap just wide enough for [200, 300)
            ([(R, 400, 100)], [1, 2]),  # [400, 600): beyond 500 nothing was held
            ([(R, 0, 500)], [0, 1, 2, 3]),  # the rest
        ])


# ---- XNU lockf_basic: three families ------------------------------------------------------------------------------

def _flock_meets(whole: locks.Family, fcntl_family: locks.Family, path) -> bool:
    """Whether a flock lock conflicts with a fcntl family's lock on the same file here: taken in this process on two
    descriptions of its own (the owners differ whatever the platform: a description, the process)."""
    one, other = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    try:
        whole.lock(one, W)
        try:
            fcntl_family.lock(other, W)
        except BlockingIOError:
            return True
        except PermissionError:  # EACCES, as F_SETLK may answer a conflict
            return True
        return False
    finally:
        os.close(one)  # this process holds no other lock on the file yet: the closes drop only the probe's
        os.close(other)


@pytest.mark.race("three families of waiters woken in turn")
@pytest.mark.parametrize("order", list(itertools.permutations(locks.families())), ids=lambda o: "-".join(map(str, o)))
@pytest.mark.refs(XNU + ": 'Test interactions between all 3 lock types'", FLOCK_2 + "; flock and fcntl locks do "
                  "not interact on Linux local filesystems", LINUX_OFD + ": OFD and classic locks conflict")
def test_the_release_order_of_three_shared_holders_decides_which_exclusive_waiters_wake(lockfile, helpers, order,
                                                                                        observe):
    """Each family holds a shared whole-file lock (the classic one by this process, the others by one description
    of it), each family has an exclusive waiter in a process of its own, and the holders let go one by one. After each
    release, exactly the waiters with no conflicting lock left are granted (of those that conflict with each other,
    one); granted waiters are then released in turn. Which locks conflict across families is the platform's: the
    whole-file family meets the fcntl families or not (observed here first, as flock(2) leaves it to them)."""
    for family in order:
        require_lock_family(family)
    path, fd = lockfile
    whole = next(f for f in order if f.system_call == "flock")
    meets = {f: _flock_meets(whole, f, path) for f in order if f.system_call != "flock"}
    observe("flock_vs_fcntl", "conflicting" if any(meets.values()) else "independent")

    def conflict(a: locks.Family, b: locks.Family) -> bool:
        if a.system_call == b.system_call:
            return True
        return meets[a if a.system_call != "flock" else b]

    for family in order:
        family.lock(fd, R)
    holders = list(order)
    with _waiters() as waiters:
        for family in order:
            waiters.append(Waiter(helpers, path, family, W, hold=True))
        _settle(path, waiters)
        assert _grants(waiters) == [], "an exclusive waiter was granted while every family held a shared lock"
        holding: list[Waiter] = []  # granted waiters, in the order they were granted
        woken = []
        while holders or holding:
            if holders:
                gone = holders.pop(0)
                gone.unlock(fd)
            else:
                gone = holding.pop(0)
                gone.release()
            blockers = list(holders) + [w.family for w in holding]
            pending = [w for w in waiters if w.answer is None]
            free = [w for w in pending if not any(conflict(b, w.family) for b in blockers)]
            # Free waiters that conflict with each other: one of each such group wins.
            groups = {frozenset(v.name for v in free if conflict(v.family, w.family)) for w in free}
            answered = _settle(path, pending, len(groups))
            granted = [w for w in answered if w.answer is not None]
            _grants(granted)
            for w in granted:
                assert w in free, f"{w.name} was granted while {[str(b) for b in blockers]} still held a lock"
            assert len(granted) == len(groups), (
                f"after {gone}: granted {[w.name for w in granted]}, one of each of {sorted(map(sorted, groups))} "
                "expected")
            for a, b in itertools.combinations(granted, 2):
                assert not conflict(a.family, b.family), f"{a.name} and {b.name} were both granted"
            holding += granted
            if isinstance(gone, locks.Family):  # what a holder's release wakes; which of a group wins is chance
                woken.append(f"{gone}:" + ("+".join(sorted("|".join(sorted(g)) for g in groups)) or "none"))
        observe("wakeups", "; ".join(woken))
        assert all(w.answer == b"granted" for w in waiters), f"not every waiter was granted in the end: {waiters}"


# ---- FreeBSD flock_helper 16: waiting threads of one owner -------------------------------------------------------

THREADS = 10


def _hold_until_told(path: str, family: locks.Family, held: Event, go: Event) -> None:
    fd = os.open(path, os.O_RDWR)
    family.lock(fd, W)
    held.set()
    go.wait()  # and exit without unlocking


def _threads_wait(path: str, family: locks.Family, started: Event) -> list:
    """In a child: THREADS threads ask for one write lock on one shared descriptor and wait; what each got."""
    fd = os.open(path, os.O_RDWR)
    outcomes: list = [None] * THREADS

    def wait(i: int) -> None:
        try:
            family.lock(fd, W, wait=True)
            outcomes[i] = "granted"
        except OSError as e:
            outcomes[i] = errno_name(e)

    threads = [threading.Thread(target=wait, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    started.set()
    end = time.monotonic() + DEFAULT_DEADLINE / 2  # within the parent's deadline: a thread still waiting is None
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return outcomes


@pytest.mark.race("threads waiting on one lock")
@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.refs(FREEBSD + ": test 16 (F_SETLKW from ten threads)", POSIX_FCNTL, LINUX_OFD, FLOCK_2)
def test_waiting_threads_of_one_owner_are_all_granted_when_the_holder_goes(lockfile, family):
    """The threads share one owner (the process, or the one description they use), so once the holder goes the
    first grant conflicts with none of the others: every wait succeeds."""
    require_lock_family(family)
    path, _ = lockfile
    with Event() as held, Event() as go, Event() as started, \
            Child(_hold_until_told, os.fspath(path), family, held, go) as holder:
        held.wait(peer=holder)
        with Child(_threads_wait, os.fspath(path), family, started) as waiter:
            started.wait(peer=waiter)
            if all_waiters(path) is not None:  # every thread asleep in the kernel before the holder goes
                end = time.monotonic() + DEFAULT_DEADLINE
                poll = FIRST_POLL
                while all_waiters(path) < THREADS:
                    assert time.monotonic() < end, f"only {all_waiters(path)} of {THREADS} threads listed as waiting"
                    assert not _ended(waiter, poll), "the waiting threads ended while the lock was held"
                    poll = min(poll * 2, WAITER_POLL)
            else:
                assert not _ended(waiter, QUIET_WINDOW), "the waiting threads ended while the lock was held"
            go.set()
            holder.join()
            outcomes = waiter.join()
    assert outcomes == ["granted"] * THREADS, f"{THREADS} threads waiting on one {family} lock: {outcomes}"


def _ended(child: Child, timeout: float) -> bool:
    """Whether the child reported or ended within timeout (its report pipe became readable)."""
    ready, _, _ = select.select([child], [], [], timeout)
    return bool(ready)


# ---- FreeBSD flock_helper 13: a wait racing the holder's exit and a timer ------------------------------------------

# One round per timer: the anchor's 2 us, then doubled round by round up to about 2 ms. The signal lands before the
# wait, during it, or after the holder's exit has granted it (here an exit grants the wait about 1 ms after the word,
# the mm of a forked pytest torn down first), and the rounds near 1 ms meet the exit at the very moment of the grant.
# (Rounds beyond one per timer, as a 50 ms budget used to allow, only replayed the shortest timers, 2 to 64 us, which
# land before or early in the wait: EINTR every time.)
RACE_TIMERS = [2e-6 * 2 ** k for k in range(11)]


class _Interrupted(Exception):
    pass


def _arm_the_timer() -> list:
    """Install a SIGALRM handler that raises _Interrupted while armed[0] is true (Python reports a wait ended by a
    signal, EINTR, only if the handler raises: otherwise it retries the call); returns `armed`."""
    armed = [False]

    def interrupt(signum, frame):
        if armed[0]:
            armed[0] = False
            raise _Interrupted

    signal.signal(signal.SIGALRM, interrupt)
    return armed


def _timed_wait(armed: list, family: locks.Family, fd: int, kind: str, start: int, length: int,
                seconds: float) -> str:
    """One waiting request with a timer armed just before it: "granted", "EINTR", or the errno name it failed with.
    The handler may run just after the call returned: a grant is then reported as EINTR, and a failure as itself
    (the context of the handler's exception)."""
    try:
        try:
            armed[0] = True
            signal.setitimer(signal.ITIMER_REAL, seconds)
            family.lock(fd, kind, start, length, wait=True)
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Interrupted as e:
        return errno_name(e.__context__) if isinstance(e.__context__, OSError) else "EINTR"
    except OSError as e:
        return errno_name(e)
    return "granted"


def _holder_that_exits(path: str, family: locks.Family, held: Event, go: Event) -> None:
    fd = os.open(path, os.O_RDWR)
    family.lock(fd, W)
    held.set()
    go.wait()  # and exit at once: the lock goes with the process


def _rounds_racing_exit_and_timer(path: str, family: locks.Family) -> list:
    """In a child: rounds of a wait on a lock whose holder is told to exit just before, with a short timer armed."""
    armed = _arm_the_timer()
    fd = os.open(path, os.O_RDWR)
    outcomes = []
    for seconds in RACE_TIMERS:
        with Event() as held, Event() as go, Child(_holder_that_exits, path, family, held, go) as holder:
            held.wait(peer=holder)
            go.set()
            outcomes.append(_timed_wait(armed, family, fd, W, 0, 0, seconds))
            holder.join()
            family.unlock(fd)
    return outcomes


@pytest.mark.race("F_SETLKW racing the holder's exit and a 2 us timer")
@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.refs(FREEBSD + ": test 13 (F_SETLKW on a locked region, race with owner)",
                  POSIX_FCNTL + "; [EINTR] the command was F_SETLKW and was interrupted by a signal", FLOCK_2)
def test_a_wait_racing_the_holders_exit_and_a_signal_succeeds_or_fails_eintr(lockfile, family):
    require_lock_family(family)
    path, _ = lockfile
    outcomes = run_in_child(_rounds_racing_exit_and_timer, os.fspath(path), family)
    strange = sorted(set(outcomes) - {"granted", "EINTR"})
    assert not strange, f"a {family} wait racing its holder's exit and a signal answered {strange} ({outcomes})"


# ---- FreeBSD flock_helper 6: a deadlock through one of two blockers ------------------------------------------------

def _member(path: str, family: locks.Family, mine: int, wanted: tuple[int, int] | None, held: Event, go: Event,
            done: Event) -> str:
    """In a child: lock byte `mine`; on the word, wait for `wanted` (start, length) and say what came of it, or,
    with nothing wanted, just hold until the word."""
    fd = os.open(path, os.O_RDWR)
    family.lock(fd, W, mine, 1)
    held.set()
    go.wait()
    if wanted is None:
        return "released"
    try:
        family.lock(fd, W, *wanted, wait=True)
        outcome = "granted"
    except OSError as e:
        outcome = errno_name(e)
    done.set(outcome.encode())
    return outcome


@pytest.mark.race("concurrent lockers closing a cycle through one of two blockers")
@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.parametrize("order", ["waiting_blocker_first", "waiting_blocker_second"])
@pytest.mark.refs(FREEBSD + ": test 6 (F_SETLKW complex deadlock)",
                  POSIX_FCNTL + "; [EDEADLK] putting the calling thread to sleep would cause a deadlock",
                  LINUX_OFD + ": no deadlock detection for OFD locks",
                  "Linux fcntl(2) BUGS: the deadlock detection of F_SETLKW can yield false negatives")
def test_a_deadlock_through_one_of_two_blockers_is_detected(lockfile, family, order, observe):
    """P holds byte 0 and asks for bytes 1-2; byte 1's holder only holds, byte 2's holder waits for byte 0. The two
    blockers' locks are made in either order, for a kernel may look only at the first blocker it finds."""
    require_lock_family(family)
    path, _ = lockfile
    events = {name: (Event(), Event(), Event()) for name in ("requester", "idle", "waiting")}
    wants = {"requester": (0, (1, 2)), "idle": (1, None), "waiting": (2, (0, 1))}
    made = ["requester"] + (["waiting", "idle"] if order == "waiting_blocker_first" else ["idle", "waiting"])
    members: dict[str, Child] = {}
    try:
        for name in made:
            mine, wanted = wants[name]
            held, go, done = events[name]
            members[name] = Child(_member, os.fspath(path), family, mine, wanted, held, go, done)
            held.wait(peer=members[name])

        def answer_or_blocked(name: str, listed: int | None) -> str:
            """What the member answered, or "blocked" once the kernel lists more than `listed` waiters on the file
            (where it lists none: once the member has been silent for QUIET_WINDOW)."""
            done = events[name][2]
            if listed is None:
                try:
                    return done.wait(QUIET_WINDOW, peer=members[name]).decode()
                except BarrierTimeout:
                    return "blocked"
            end = time.monotonic() + DEFAULT_DEADLINE
            poll = FIRST_POLL
            while True:
                try:
                    return done.wait(poll, peer=members[name]).decode()
                except BarrierTimeout:
                    pass
                if all_waiters(path) > listed:
                    return "blocked"
                assert time.monotonic() < end, f"{name} neither answered nor was listed as waiting"
                poll = min(poll * 2, WAITER_POLL)

        def ask(name: str) -> str:
            listed = all_waiters(path)
            events[name][1].set()
            return answer_or_blocked(name, listed)

        assert ask("waiting") == "blocked", "byte 2's holder did not block on byte 0 (held by the requester)"
        first = ask("requester")
        observe("deadlock", "detected" if first == "EDEADLK" else first)
        # Unwind: byte 1's holder goes. A requester still waiting then meets only byte 2's holder, which waits for it.
        events["idle"][1].set()
        members["idle"].join()
        later = ""
        if first == "blocked":
            # Woken by that release, it answers or waits again: listed beside byte 2's holder, the one other waiter.
            later = answer_or_blocked("requester", None if all_waiters(path) is None else 1)
            observe("after_the_idle_blocker_left", "detected" if later == "EDEADLK" else later)
        members["requester"].kill()  # its byte 0 goes with it, whatever it got
        assert events["waiting"][2].wait(peer=members["waiting"]) == b"granted", "byte 2's holder was never granted"
        members["waiting"].join()
        if family.detects_deadlock:
            assert first == "EDEADLK", (
                f"F_SETLKW over bytes 1-2, whose holders are an idle process and one waiting for the requester's byte "
                f"0 (the waiting one's lock made {order.split('_')[-1]}): {first}, not EDEADLK; once the idle holder "
                f"left, the requester answered {later or 'nothing'}")
    finally:
        for child in members.values():
            child.kill()
        for trio in events.values():
            for event in trio:
                event.close()


# ---- FreeBSD flock_helper 14: a soak of random byte-range lockers --------------------------------------------------

SOAKERS, SOAK_OPS, SOAK_BYTES = 4, 30, 128
SOAK_SEED = 14
SOAK_TIMER = 0.003  # the anchor's 3 ms: a wait that long is given up (it breaks deadlocks, detected or not)


def _soak(path: str, family: locks.Family, who: int, go: Event) -> int:
    """In a child: SOAK_OPS random lock or unlock requests on byte ranges; under a write lock write this locker's
    mark over the range, under a read lock remember what is there; after each, every byte still held must read as
    this locker left or found it. Returns how many requests were granted."""
    rng = random.Random(SOAK_SEED * 100 + who)
    armed = _arm_the_timer()
    fd = os.open(path, os.O_RDWR)
    mine = bytearray(SOAK_BYTES)  # what each byte held should read
    held = [U] * SOAK_BYTES
    mark = 1 + who
    granted = 0
    go.wait()
    for op in range(SOAK_OPS):
        start = rng.randrange(SOAK_BYTES - 1)
        end = rng.randrange(start + 1, SOAK_BYTES)
        kind = rng.choice([R, W]) if rng.random() < 0.5 else U  # the anchor: set or not, then read or write
        if kind == U:  # an unlock never waits
            family.unlock(fd, start, end - start)
        else:
            outcome = _timed_wait(armed, family, fd, kind, start, end - start, SOAK_TIMER)
            if outcome in ("EINTR", "EDEADLK"):  # given up, as the anchor does
                continue
            assert outcome == "granted", f"locker {who}, request {op}: a waiting {kind} lock answered {outcome}"
        granted += 1
        held[start:end] = [kind] * (end - start)
        if kind == W:
            mine[start:end] = bytes([mark]) * (end - start)
            middle = (start + end) // 2  # in two writes, so that a writer caught midway shows
            os.pwrite(fd, bytes(mine[start:middle]), start)
            os.sched_yield()
            os.pwrite(fd, bytes(mine[middle:end]), middle)
        elif kind == R:
            mine[start:end] = os.pread(fd, end - start, start)
        os.sched_yield()
        now = os.pread(fd, SOAK_BYTES, 0)
        wrong = [i for i in range(SOAK_BYTES) if held[i] != U and now[i] != mine[i]]
        assert not wrong, (f"locker {who}, request {op}: bytes {wrong[:8]} it holds ({held[wrong[0]]}) read "
                           f"{now[wrong[0]]}, not {mine[wrong[0]]}")
    return granted


@pytest.mark.race("random byte-range lockers")
@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.refs(FREEBSD + ": test 14 (soak test)", POSIX_FCNTL, LINUX_OFD)
def test_random_byte_range_lockers_never_see_each_others_writes_in_ranges_they_hold(workdir, family):
    require_lock_family(family)
    path = workdir / "soaked"
    path.write_bytes(b"\0" * SOAK_BYTES)
    gos = [Event() for _ in range(SOAKERS)]
    children = []
    try:
        for who, go in enumerate(gos):
            children.append(Child(_soak, os.fspath(path), family, who, go))
        for go in gos:
            go.set()
        granted = [child.join() for child in children]
    finally:
        for child in children:
            child.kill()
        for go in gos:
            go.close()
    assert sum(granted) > 0, "no request of the soak was ever granted"


# ---- LTP fcntl36: OFD and classic locks racing in threads ---------------------------------------------------------

SECTION = 1024  # each thread's range; checked in quarters, written in eighths so that a torn write shows
RACERS, RACE_LOOPS = 2, 20


def _roles():
    """The anchor's seven combinations of (family, kind) roles, with families chosen by owner."""
    if not (DESCRIPTION_RANGED and PROCESS_RANGED):
        return []
    d, p = DESCRIPTION_RANGED[0], PROCESS_RANGED[0]
    return [((d, R), (d, W)), ((d, W), (p, W)), ((d, R), (p, W)), ((d, W), (p, R)), ((d, W), (d, W)),
            ((d, R), (d, W), (p, W)), ((d, R), (d, W), (p, R))]


def _quarters_uniform(data: bytes, offset: int) -> str | None:
    quarter = SECTION // 4
    for q in range(0, len(data), quarter):
        piece = data[q:q + quarter]
        if not (1 <= piece[0] <= 254) or piece.count(piece[0]) != len(piece):
            return f"bytes {offset + q}..{offset + q + len(piece) - 1}: {sorted(set(piece))[:6]}"
    return None


def _race_threads(path: str, roles) -> list:
    """In a child: RACERS threads per role, role r's thread i over [i*SECTION + r*SECTION/4, +SECTION), each on a
    description of its own; readers check what they read, writers write a value per round. Problems found."""
    problems: list = []
    start = threading.Barrier(RACERS * len(roles), timeout=DEFAULT_DEADLINE)
    finish = threading.Barrier(RACERS * len(roles), timeout=DEFAULT_DEADLINE)  # no classic lock's close too soon

    def run(family: locks.Family, kind: str, offset: int, value: int) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            start.wait()
            for _ in range(RACE_LOOPS):
                family.lock(fd, kind, offset, SECTION, wait=True)
                if kind == W:
                    eighth = SECTION // 8
                    for piece in range(0, SECTION, eighth):
                        os.pwrite(fd, bytes([value]) * eighth, offset + piece)
                        os.sched_yield()
                    value = value + 1 if value < 254 else 2
                else:
                    problem = _quarters_uniform(os.pread(fd, SECTION, offset), offset)
                    if problem:
                        problems.append(f"{family} reader saw {problem}")
                family.unlock(fd, offset, SECTION)
                os.sched_yield()
            finish.wait()
        except BaseException as e:
            problems.append(f"{family} {kind}: {e!r}")
            start.abort()
            finish.abort()
        finally:
            os.close(fd)

    threads = [threading.Thread(target=run, args=(family, kind, i * SECTION + r * SECTION // 4, i + 2), daemon=True)
               for r, (family, kind) in enumerate(roles) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEFAULT_DEADLINE)
    return problems


@pytest.mark.race("OFD and classic lock threads racing")
@pytest.mark.parametrize("roles", _roles(), ids=lambda roles: "-".join(f"{f}_{k}" for f, k in roles))
@pytest.mark.refs("LTP testcases/kernel/syscalls/fcntl/fcntl36.c (7 combinations)",
                  LINUX_OFD + ": OFD and classic locks conflict, also between threads of one process", POSIX_FCNTL)
def test_description_and_process_owned_range_locks_racing_in_threads_keep_data_consistent(workdir, roles):
    for family, _ in roles:
        require_lock_family(family)
    path = workdir / "raced"
    path.write_bytes(b"\1" * (SECTION * (RACERS + 1)))
    problems = run_in_child(_race_threads, os.fspath(path), roles)
    assert not problems, f"{len(problems)} problems, first: {problems[0]}"
    data = path.read_bytes()
    problem = _quarters_uniform(data[:SECTION * RACERS], 0)
    assert problem is None, f"after the race, {problem}"
    written = [r for r, (_, kind) in enumerate(roles) if kind == W]
    first = min(written) * SECTION // 4
    assert 1 not in data[first:SECTION * RACERS], "a range some writer locked and wrote still holds the initial value"
