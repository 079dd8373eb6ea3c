"""Byte-range lock arithmetic: what one owner's locks become when it locks, relocks and unlocks sub-ranges.

Every case takes locks through one descriptor of one owner (the process for classic POSIX locks, the open file
description for OFD locks) and asks another process, with a description of its own, what it sees: the whole lock
map, walked with the family's query command (F_GETLK, F_OFD_GETLK) and compared as a list of segments
(kind, start, end, l_pid), end exclusive, EOF for a lock that runs to the largest offset (l_len 0). One helper
process (harness Helper) answers every query (a fork of this process costs milliseconds; a query, microseconds),
each through a description of its own opened for it: the module's, made once, or, where the leak check cannot list
children cheaply or the module's has ended, one of the case's own.

Most cases are data: a Shape is (initial locks, one operation, the segments expected), grouped by what the operation
does (coalesce, change the type, unlock), each shape with its own anchor. The fstests locktest sequences are scripts
of operations with the map expected along the way.

Anchors: POSIX.1-2024 XSH fcntl(); LTP testcases/kernel/syscalls/fcntl/fcntl11.c, fcntl14.c, fcntl19.c, fcntl20.c,
fcntl21.c; XNU tests/lockf_basic.c and tests/lockf_EOF_77264182.c; fstests generic/131 (src/locktest.c);
Linux tools/testing/selftests/filelock/ofdlocks.c.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import re
import stat
import struct
from typing import NamedTuple

import pytest

from conformance import locks
from conformance.harness.children import Helper
from conformance.outcomes import Unsupported
from conformance.platforms import constants, process

from ._support import data_file, errno_name, require_lock_family

POSIX_FCNTL = "POSIX.1-2024 XSH fcntl()"
ONE_TYPE = ("Linux fcntl(2): 'A single process can hold only one type of lock on a file region; if a new lock is "
            "applied to an already-locked region, then the existing lock is converted to the new lock type' "
            "(splitting, shrinking, or coalescing)")
POSIX_SETLK = POSIX_FCNTL + ": F_SETLK sets or clears a file segment lock"
POSIX_UNLOCK = POSIX_FCNTL + ": 'an unlock (F_UNLCK) request shall attempt to unlock only the requested segment'"
POSIX_GETLK = (POSIX_FCNTL + ": F_GETLK describes a lock that would prevent the request (l_whence SEEK_SET), "
               "else leaves the structure unchanged but for l_type F_UNLCK")
POSIX_OFF_MAX = (POSIX_FCNTL + ": l_len 0 extends the lock to the largest possible file offset; an F_UNLCK ending at "
                 "the largest off_t unlocks a lock with l_len 0 from its start")
LINUX_OFD_PID = "Linux fcntl(2): a conflicting open file description lock is reported with l_pid -1"
LTP = "LTP testcases/kernel/syscalls/fcntl/"
XNU_BASIC = "XNU tests/lockf_basic.c"
XNU_EOF = "XNU tests/lockf_EOF_77264182.c"
LOCKTEST = "fstests generic/131 (src/locktest.c)"
OFDLOCKS = "Linux tools/testing/selftests/filelock/ofdlocks.c"

# Byte-range families whose query command can walk a lock map, by property (locks.families), never by name.
RANGED = locks.families(ranges=True, queryable=True)
# Families whose query can ask about its caller's own locks: the lock belongs to the description that asks.
OWN_QUERY = locks.families(ranges=True, queryable=True, owner="description")

FILE_SIZE = 64
EOF = "EOF"  # a segment's end when it runs to the largest file offset (l_len 0, or an explicit range to OFF_MAX)
MAX_SEGMENTS = 64  # a bound on one walk, should a query keep answering nonsense


# ---- the largest off_t -----------------------------------------------------------------------------------------------

def off_max() -> int:
    """The largest value of off_t here: l_start's type in the platform's struct flock layout (conformance/platforms),
    signed."""
    c = constants()
    if not c.FLOCK_FORMAT:
        raise Unsupported(f"no struct flock layout is known for {c.NAME}")
    prefix = c.FLOCK_FORMAT[0] if c.FLOCK_FORMAT[0] in "@=<>!" else ""
    codes = [code for count, code in re.findall(r"(\d*)([A-Za-z?])", c.FLOCK_FORMAT) if code != "x"
             for _ in range(int(count or 1))]
    size = struct.calcsize(prefix + dict(zip(c.FLOCK_FIELDS, codes))["l_start"])
    return 2 ** (8 * size - 1) - 1


# ---- another process's view ------------------------------------------------------------------------------------------

def _end_of(start: int, length: int, largest: int) -> int | str:
    """The exclusive end of a range as F_GETLK reports it; EOF where it runs to the largest offset."""
    return EOF if length == 0 or start + length - 1 >= largest else start + length


def _walk(fd: int, family: locks.Family) -> list:
    """Every lock on the file that conflicts with a write lock, as (kind, start, l_len, l_pid) sorted by start.

    A query "returns details about one of those locks" (Linux fcntl(2)), not necessarily the lowest, so each answer
    splits the range asked into the parts before and after the lock it names, asked again until they are free."""
    largest = off_max()
    found = []
    pending = [(0, EOF)]  # [first, end) still to ask about
    while pending and len(found) < MAX_SEGMENTS:
        first, end = pending.pop()
        held = family.query(fd, "write", first, 0 if end == EOF else end - first)
        if held is None:
            continue
        found.append((held.kind, held.start, held.length, held.pid))
        held_end = _end_of(held.start, held.length, largest)
        if first < held.start and (end == EOF or held.start < end):
            pending.append((first, held.start))
        if held_end != EOF and held_end > first and (end == EOF or held_end < end):
            pending.append((held_end, end))
    return sorted(found, key=lambda reply: reply[1])


def _probe(fd: int, family: locks.Family, offset: int, kind: str, start: int, length: int) -> tuple[dict, str]:
    """At file offset `offset`: the query's reply to a SEEK_CUR request, then whether the same lock is granted (and
    dropped again at once)."""
    os.lseek(fd, offset, os.SEEK_SET)
    getlk, _, _ = locks.commands(family)
    reply = locks.unpack_flock(fcntl.fcntl(fd, getlk, locks.pack_flock(kind, start, length, os.SEEK_CUR)))
    try:
        family.lock(fd, kind, start, length, whence=os.SEEK_CUR)
    except OSError as e:
        return reply, errno_name(e)
    family.lock(fd, "unlock", start, length, whence=os.SEEK_CUR)
    return reply, "granted"


def _walk_file(path: str, family_name: str) -> list:
    """In the helper: _walk through a description of its own, opened for the question and closed after it."""
    fd = os.open(path, os.O_RDWR)
    try:
        return _walk(fd, locks.family(family_name))
    finally:
        os.close(fd)


def _probe_file(path: str, family_name: str, offset: int, kind: str, start: int, length: int) -> tuple[dict, str]:
    """In the helper: _probe through a description of its own, opened for the question and closed after it (the
    close drops whatever lock of the helper's the probe might have left)."""
    fd = os.open(path, os.O_RDWR)
    try:
        return _probe(fd, locks.family(family_name), offset, kind, start, length)
    finally:
        os.close(fd)


class AnotherProcess:
    """Another process's view of one case's file: every question asked of a helper process (harness Helper) that
    opens a description of its own for the question and closes it after, so that it holds nothing between questions
    and nothing of one case reaches another. Families go by their registered names."""

    def __init__(self, helper: Helper, path, family: locks.Family) -> None:
        self._helper, self._path, self._family = helper, os.path.abspath(path), str(family)

    def segments(self) -> list:
        """The whole lock map as this process sees it: [(kind, start, end, l_pid)], end exclusive or EOF."""
        return as_segments(self.replies())

    def replies(self) -> list:
        """The same map as the query reported it: [(kind, l_start, l_len, l_pid)]."""
        return self._helper.call(_walk_file, self._path, self._family)

    def probe(self, offset: int, kind: str, start: int, length: int) -> tuple[dict, str]:
        return self._helper.call(_probe_file, self._path, self._family, offset, kind, start, length)


@pytest.fixture(scope="module")
def _module_helper():
    """One helper process for the module's cases, made before any case's leak check takes its snapshot; none where
    that check cannot list children cheaply (it would run ps(1) at every check while the helper lives)."""
    if not process.children_listed_cheaply():
        yield None
        return
    with Helper() as helper:
        yield helper


@pytest.fixture
def another_process(_module_helper):
    """another_process(path, family): a context manager giving an AnotherProcess for the case's file, asking the
    module's helper or, where there is none or it has ended (it hung or crashed in an earlier case, which that case
    reported), a helper of the case's own, ended with the case."""

    @contextlib.contextmanager
    def session(path, family: locks.Family):
        if _module_helper is not None and _module_helper.alive:
            yield AnotherProcess(_module_helper, path, family)
            return
        with Helper() as own:
            yield AnotherProcess(own, path, family)

    return session


def as_segments(replies: list) -> list:
    """[(kind, l_start, l_len, l_pid)] as [(kind, start, end, l_pid)], end exclusive or EOF."""
    largest = off_max()
    return [(kind, start, _end_of(start, length, largest), pid) for kind, start, length, pid in replies]


def holder_pid(family: locks.Family) -> int:
    """The l_pid a query reports for this process's locks of the family: the process that owns a classic lock;
    -1 for a lock of an open file description, which no process owns (Linux fcntl(2), XNU lockf_basic.c)."""
    return os.getpid() if family.owner == "process" else -1


# ---- shapes as data --------------------------------------------------------------------------------------------------

class Op(NamedTuple):
    """One fcntl request of the owner, SEEK_SET: kind read, write or unlock over [start, start + length); length 0
    runs to the end."""

    kind: str
    start: int
    length: int

    def __repr__(self) -> str:  # as the data spells it
        return f"{_SPELLING[self.kind]}({self.start}, {self.length})"


_SPELLING = {"read": "rd", "write": "wr", "unlock": "un"}


def rd(start: int, length: int) -> Op:
    return Op("read", start, length)


def wr(start: int, length: int) -> Op:
    return Op("write", start, length)


def un(start: int, length: int) -> Op:
    return Op("unlock", start, length)


def lock(kind: str, start: int, length: int) -> Op:
    return Op(kind, start, length)


class Shape(NamedTuple):
    """initial: locks taken first, a state (disjoint, so they are also the segments seen before the operation);
    operation: the request under test; expected: the segments (kind, start, end) seen after it."""

    name: str
    anchor: str
    initial: tuple
    operation: Op
    expected: list


def _segments_of(ops) -> list:
    return [(op.kind, op.start, op.start + op.length if op.length else EOF) for op in ops]


def _apply(family: locks.Family, fd: int, op: Op) -> None:
    try:
        family.lock(fd, op.kind, op.start, op.length)
    except OSError as e:
        raise AssertionError(f"the owner's own {op} was refused: {errno_name(e)}") from None


def _params(shapes) -> list:
    return [pytest.param(shape, id=shape.name, marks=pytest.mark.refs(shape.anchor)) for shape in shapes]


def _type_changes(held: str, other: str, anchor: str) -> list:
    """LTP fcntl11 (held write, other read) and fcntl21 (held read, other write): a lock of the other type placed
    before, over the head, inside, over the tail and after an own lock of [10, 15) or [10, 20)."""
    h, o = held, other
    short, long_ = (lock(h, 10, 5),), (lock(h, 10, 10),)

    def shape(name, initial, operation, expected):
        return Shape(f"{h}_lock-{o}_{name}", anchor, initial, operation, expected)

    return [
        shape("before_it", short, lock(o, 1, 5), [(o, 1, 6), (h, 10, 15)]),
        shape("adjacent_before_it", short, lock(o, 5, 5), [(o, 5, 10), (h, 10, 15)]),
        shape("over_its_first_byte", short, lock(o, 5, 6), [(o, 5, 11), (h, 11, 15)]),
        shape("over_its_head", short, lock(o, 5, 8), [(o, 5, 13), (h, 13, 15)]),
        shape("inside_it", long_, lock(o, 13, 5), [(h, 10, 13), (o, 13, 18), (h, 18, 20)]),
        shape("over_its_tail", short, lock(o, 13, 5), [(h, 10, 13), (o, 13, 18)]),
        shape("over_its_last_byte", short, lock(o, 14, 5), [(h, 10, 14), (o, 14, 19)]),
        shape("adjacent_after_it", short, lock(o, 15, 5), [(h, 10, 15), (o, 15, 20)]),
        shape("after_it", short, lock(o, 16, 5), [(h, 10, 15), (o, 16, 21)]),
    ]


LTP_11, LTP_21 = LTP + "fcntl11.c", LTP + "fcntl21.c"
XNU_UPGRADE = XNU_BASIC + ": upgrade"
TYPE_CHANGES = _type_changes("write", "read", LTP_11) + [
    Shape("read_over_the_whole_file", LTP_21 + " (block 1)", (), rd(0, 0), [("read", 0, EOF)]),
    Shape("write_over_the_whole_file", LTP_21 + " (block 2)", (), wr(0, 0), [("write", 0, EOF)]),
] + _type_changes("read", "write", LTP_21) + [
    # XNU lockf_basic's upgrade sequence, each step from the state the one before leaves.
    Shape("upgrade-adjacent_high_not_coalesced", XNU_UPGRADE, (rd(50, 200),), wr(250, 50),
          [("read", 50, 250), ("write", 250, 300)]),
    Shape("upgrade-adjacent_low_not_coalesced", XNU_UPGRADE, (rd(50, 200), wr(250, 50)), wr(25, 25),
          [("write", 25, 50), ("read", 50, 250), ("write", 250, 300)]),
    Shape("upgrade-truncate_shared_end_grow_exclusive_start", XNU_UPGRADE, (wr(25, 25), rd(50, 200), wr(250, 50)),
          wr(225, 50), [("write", 25, 50), ("read", 50, 225), ("write", 225, 300)]),
    Shape("upgrade-truncate_shared_start_grow_exclusive_end", XNU_UPGRADE, (wr(25, 25), rd(50, 175), wr(225, 75)),
          wr(40, 20), [("write", 25, 60), ("read", 60, 225), ("write", 225, 300)]),
    Shape("upgrade-three_way_split", XNU_UPGRADE, (wr(25, 35), rd(60, 165), wr(225, 75)), wr(100, 50),
          [("write", 25, 60), ("read", 60, 100), ("write", 100, 150), ("read", 150, 225), ("write", 225, 300)]),
    Shape("upgrade-subsume_multiple_locks", XNU_UPGRADE,
          (wr(25, 35), rd(60, 40), wr(100, 50), rd(150, 75), wr(225, 75)), wr(25, 275), [("write", 25, 300)]),
]

XNU_COALESCE = XNU_BASIC + ": coalescing"
COALESCING = [  # XNU lockf_basic's coalescing sequence (shared locks), each step from the state the one before leaves
    Shape("equal", XNU_COALESCE, (rd(130, 20),), rd(130, 20), [("read", 130, 150)]),
    Shape("adjacent_high", XNU_COALESCE, (rd(130, 20),), rd(150, 25), [("read", 130, 175)]),
    Shape("adjacent_low", XNU_COALESCE, (rd(130, 45),), rd(125, 5), [("read", 125, 175)]),
    Shape("subsume_smaller", XNU_COALESCE, (rd(125, 50),), rd(150, 10), [("read", 125, 175)]),
    Shape("subsume_larger", XNU_COALESCE, (rd(125, 50),), rd(100, 100), [("read", 100, 200)]),
    Shape("extend_high", XNU_COALESCE, (rd(100, 100),), rd(100, 125), [("read", 100, 225)]),
    Shape("extend_low", XNU_COALESCE, (rd(100, 125),), rd(75, 150), [("read", 75, 225)]),
    Shape("overlap_start", XNU_COALESCE, (rd(75, 150),), rd(50, 100), [("read", 50, 225)]),
    Shape("overlap_end", XNU_COALESCE, (rd(50, 175),), rd(150, 100), [("read", 50, 250)]),
]


def _unlocks(held: str, anchor: str) -> list:
    """LTP fcntl19 (held write) and fcntl20 (held read): unlocking before, over the head, inside, over the tail and
    after an own lock of [10, 15) or [10, 20)."""
    h = held
    short, long_ = (lock(h, 10, 5),), (lock(h, 10, 10),)

    def shape(name, initial, operation, expected):
        return Shape(f"{h}_lock-unlock_{name}", anchor, initial, operation, expected)

    return [
        shape("adjacent_before_it", short, un(5, 5), [(h, 10, 15)]),
        shape("over_its_first_byte", short, un(5, 6), [(h, 11, 15)]),
        shape("over_its_head", short, un(5, 8), [(h, 13, 15)]),
        shape("inside_it", long_, un(13, 5), [(h, 10, 13), (h, 18, 20)]),
        shape("over_its_tail", short, un(13, 5), [(h, 10, 13)]),
        shape("from_its_last_byte", short, un(14, 5), [(h, 10, 14)]),
        shape("to_the_end_after_it", short, un(16, 0), [(h, 10, 15)]),
    ]


XNU_UNLOCK = XNU_BASIC + ": unlock"
UNLOCKS = _unlocks("write", LTP + "fcntl19.c") + _unlocks("read", LTP + "fcntl20.c") + [
    # XNU lockf_basic's unlock sequence, each step from the state the one before leaves.
    Shape("unlock-region_with_no_locks", XNU_UNLOCK, (wr(25, 275),), un(300, 100), [("write", 25, 300)]),
    Shape("unlock-overlap_end", XNU_UNLOCK, (wr(25, 275),), un(250, 100), [("write", 25, 250)]),
    Shape("unlock-equal_range", XNU_UNLOCK, (wr(25, 225), wr(290, 20)), un(290, 20), [("write", 25, 250)]),
    Shape("unlock-overlap_start", XNU_UNLOCK, (wr(25, 225),), un(0, 50), [("write", 50, 250)]),
    Shape("unlock-start_aligned", XNU_UNLOCK, (wr(50, 200),), un(50, 50), [("write", 100, 250)]),
    Shape("unlock-end_aligned", XNU_UNLOCK, (wr(100, 150),), un(200, 50), [("write", 100, 200)]),
    Shape("unlock-split", XNU_UNLOCK, (wr(100, 100),), un(125, 50), [("write", 100, 125), ("write", 175, 200)]),
    Shape("unlock-multiple_locks", XNU_UNLOCK, (wr(100, 25), wr(175, 25)), un(0, 0), []),
]


@pytest.fixture
def lockfile(workdir):
    fd = data_file(workdir, "locked", b"\0" * FILE_SIZE)
    yield workdir / "locked", fd
    os.close(fd)


def _check_shape(lockfile, another_process, family: locks.Family, shape: Shape) -> None:
    """Take the initial locks, check the map, apply the operation, check the map, unlock the whole file, check that
    nothing is left: every map as another process sees it."""
    require_lock_family(family)
    path, fd = lockfile
    holder = holder_pid(family)
    with another_process(path, family) as other:
        for op in shape.initial:
            _apply(family, fd, op)
        before = other.segments()
        expected_before = [(*segment, holder) for segment in _segments_of(shape.initial)]
        assert before == expected_before, f"after {list(shape.initial)} another process sees {before}, " \
                                          f"expected {expected_before}"
        _apply(family, fd, shape.operation)
        after = other.segments()
        family.unlock(fd)
        left = other.segments()
    expected = [(*segment, holder) for segment in shape.expected]
    assert after == expected, (f"{list(shape.initial)} then {shape.operation}: another process sees {after}, "
                               f"expected {expected}")
    assert left == [], f"unlocking the whole file left {left}"


@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.parametrize("shape", _params(COALESCING))
@pytest.mark.refs(ONE_TYPE, POSIX_SETLK, LINUX_OFD_PID)
def test_a_lock_of_the_same_type_coalesces_with_the_owners_lock(lockfile, another_process, family, shape):
    _check_shape(lockfile, another_process, family, shape)


@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.parametrize("shape", _params(TYPE_CHANGES))
@pytest.mark.refs(ONE_TYPE, POSIX_SETLK, LINUX_OFD_PID)
def test_a_lock_of_the_other_type_replaces_the_owners_lock_on_its_range_only(lockfile, another_process, family, shape):
    _check_shape(lockfile, another_process, family, shape)


@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.parametrize("shape", _params(UNLOCKS))
@pytest.mark.refs(POSIX_UNLOCK, ONE_TYPE, LINUX_OFD_PID)
def test_an_unlock_removes_the_owners_locks_from_its_range_only(lockfile, another_process, family, shape):
    _check_shape(lockfile, another_process, family, shape)


# ---- fstests generic/131: sequences of one owner's requests ---------------------------------------------------------

class Script(NamedTuple):
    """locktest's test `number`: its requests in order, with the map expected where a list stands; the anchor's own
    unlocks close it, after which nothing may be left."""

    name: str
    number: int
    steps: list


W10, W30, W50 = wr(10, 10), wr(30, 10), wr(50, 10)  # locktest's usual list of three write locks
LIST = [("write", 10, 20), ("write", 30, 40), ("write", 50, 60)]
CLOSE_LIST = [un(10, 10), un(30, 10), un(50, 10)]

LOCKTEST_SCRIPTS = [
    # Section 1: write locks and unlocks of one process.
    Script("lock_an_empty_list", 1, [wr(1, 10), [("write", 1, 11)], un(1, 10)]),
    Script("lock_at_the_start_and_end_of_a_list", 2, [
        W10, W30, W50, wr(1, 5), wr(70, 5), [("write", 1, 6), *LIST, ("write", 70, 75)],
        *CLOSE_LIST, un(1, 5), un(70, 5)]),
    Script("lock_in_the_middle_of_a_list", 3, [
        W10, W30, W50, wr(42, 5), [("write", 10, 20), ("write", 30, 40), ("write", 42, 47), ("write", 50, 60)],
        *CLOSE_LIST, un(42, 5)]),
    Script("exact_overlaps_of_each_type", 4, [
        W10, W30, W50, wr(30, 10), LIST,
        rd(30, 10), [("write", 10, 20), ("read", 30, 40), ("write", 50, 60)],
        un(30, 10), [("write", 10, 20), ("write", 50, 60)],
        wr(30, 10), LIST, *CLOSE_LIST]),
    Script("a_new_lock_covering_an_old_one", 5, [
        W10, W30, W50,
        wr(30, 15), [("write", 10, 20), ("write", 30, 45), ("write", 50, 60)],
        wr(25, 20), [("write", 10, 20), ("write", 25, 45), ("write", 50, 60)],
        wr(22, 26), [("write", 10, 20), ("write", 22, 48), ("write", 50, 60)],
        un(10, 10), un(22, 26), un(50, 10)]),
    Script("a_new_lock_inside_an_old_one", 6, [
        W10, W30, W50, wr(30, 5), LIST, wr(32, 6), LIST, wr(32, 8), LIST,
        un(10, 10), un(30, 10), un(32, 8), un(50, 10)]),
    Script("a_new_lock_starting_before_an_old_one", 7, [
        W10, W30, W50,
        wr(27, 10), [("write", 10, 20), ("write", 27, 40), ("write", 50, 60)],
        wr(25, 2), [("write", 10, 20), ("write", 25, 40), ("write", 50, 60)],
        un(10, 10), un(25, 15), un(50, 10)]),
    Script("a_new_lock_starting_inside_an_old_one", 8, [
        W10, W30, W50,
        wr(35, 10), [("write", 10, 20), ("write", 30, 45), ("write", 50, 60)],
        wr(45, 2), [("write", 10, 20), ("write", 30, 47), ("write", 50, 60)],
        un(10, 10), un(30, 17), un(50, 10)]),
    # Section 2: overlapping read and write locks and unlocks of one process.
    Script("other_types_covering_an_old_lock", 9, [
        W10, W30, W50,
        rd(30, 15), [("write", 10, 20), ("read", 30, 45), ("write", 50, 60)],
        wr(25, 20), [("write", 10, 20), ("write", 25, 45), ("write", 50, 60)],
        rd(22, 26), [("write", 10, 20), ("read", 22, 48), ("write", 50, 60)],
        un(10, 10), un(22, 26), un(50, 10)]),
    Script("other_types_inside_an_old_lock", 10, [
        W10, W30, W50,
        rd(30, 5), [("write", 10, 20), ("read", 30, 35), ("write", 35, 40), ("write", 50, 60)],
        wr(32, 2), [("write", 10, 20), ("read", 30, 32), ("write", 32, 34), ("read", 34, 35), ("write", 35, 40),
                    ("write", 50, 60)],
        rd(36, 5), [("write", 10, 20), ("read", 30, 32), ("write", 32, 34), ("read", 34, 35), ("write", 35, 36),
                    ("read", 36, 41), ("write", 50, 60)],
        un(10, 10), un(30, 11), un(50, 10)]),
    Script("other_types_starting_before_an_old_lock", 11, [
        W10, W30, W50,
        rd(27, 10), [("write", 10, 20), ("read", 27, 37), ("write", 37, 40), ("write", 50, 60)],
        wr(25, 3), [("write", 10, 20), ("write", 25, 28), ("read", 28, 37), ("write", 37, 40), ("write", 50, 60)],
        un(10, 10), un(25, 15), un(50, 10)]),
    Script("other_types_starting_inside_an_old_lock", 12, [
        W10, W30, W50,
        rd(35, 10), [("write", 10, 20), ("write", 30, 35), ("read", 35, 45), ("write", 50, 60)],
        wr(44, 3), [("write", 10, 20), ("write", 30, 35), ("read", 35, 44), ("write", 44, 47), ("write", 50, 60)],
        un(10, 10), un(30, 18), un(50, 10)]),
]


@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.parametrize("script", [pytest.param(s, id=f"t{s.number:02d}_{s.name}") for s in LOCKTEST_SCRIPTS])
@pytest.mark.refs(LOCKTEST + " sections 1-2: same-process list manipulation", ONE_TYPE, POSIX_UNLOCK)
def test_a_sequence_of_own_requests_always_succeeds_and_unlocks_cleanly(lockfile, another_process, family, script):
    require_lock_family(family)
    path, fd = lockfile
    holder = holder_pid(family)
    done = []
    with another_process(path, family) as other:
        for step in script.steps:
            if isinstance(step, Op):
                _apply(family, fd, step)
                done.append(step)
                continue
            seen, expected = other.segments(), [(*segment, holder) for segment in step]
            assert seen == expected, f"after {done} another process sees {seen}, expected {expected}"
        left = other.segments()
    assert left == [], f"the anchor's unlocks ({done}) left {left}"


# ---- SEEK_END before the start of the file ---------------------------------------------------------------------------

@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.refs(XNU_BASIC + ": SEEK_END -(file_len + 10), 20 => EINVAL",
                  POSIX_FCNTL + ": [EINVAL] the data pointed to by arg is not valid")
def test_a_range_from_the_end_that_starts_before_offset_0_is_refused(lockfile, another_process, family):
    require_lock_family(family)
    path, fd = lockfile
    with another_process(path, family) as other:
        with pytest.raises(OSError) as refused:
            family.lock(fd, "write", -(FILE_SIZE + 10), 20, whence=os.SEEK_END)
        left = other.segments()
    assert refused.value.errno == errno.EINVAL, f"a SEEK_END range before offset 0: {errno_name(refused.value)}"
    assert left == [], f"the refused request left {left}"


# ---- locks that touch OFF_MAX ----------------------------------------------------------------------------------------

EOF_ROUNDS = 5  # XNU loops 100 times to catch a kernel hang; a few rounds show the arithmetic


@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.refs(XNU_EOF, POSIX_OFF_MAX)
def test_a_range_to_off_max_is_the_same_as_l_len_0(lockfile, another_process, family, observe):
    require_lock_family(family)
    path, fd = lockfile
    largest, holder = off_max(), holder_pid(family)
    with another_process(path, family) as other:
        for n in range(EOF_ROUNDS):
            start = largest - n
            _apply(family, fd, wr(start, 0))
            seen = other.segments()
            assert seen == [("write", start, EOF, holder)], f"round {n}: [OFF_MAX - {n}, EOF) is seen as {seen}"
            _apply(family, fd, un(start, largest - start + 1))
            seen = other.segments()
            assert seen == [], f"round {n}: an unlock of [OFF_MAX - {n}, OFF_MAX] left {seen} of an l_len 0 lock"
            _apply(family, fd, wr(start - 1, largest - start + 2))
            replies = other.replies()
            seen = as_segments(replies)
            assert seen == [("write", start - 1, EOF, holder)], (
                f"round {n}: an explicit lock of [OFF_MAX - {n + 1}, OFF_MAX] is seen as {replies}")
        family.unlock(fd)
        left = other.segments()
    assert left == [], f"unlocking the whole file left {left}"
    # F_GETLK may describe a lock through OFF_MAX with l_len 0 (Linux) or its explicit length (XNU lf_getlock).
    observe("explicit_range_to_off_max_reported_with", "l_len 0" if replies[0][2] == 0 else "explicit l_len")


# ---- Linux selftest filelock/ofdlocks.c: the F_UNLCK query of one's own description ----------------------------------

def _own_query(fd: int, family: locks.Family, start: int, length: int) -> tuple[bytes, bytes]:
    """(request, reply) of the family's query with l_type F_UNLCK; unsupported where that query is refused."""
    getlk, _, _ = locks.commands(family)
    request = locks.pack_flock("unlock", start, length)
    try:
        return request, fcntl.fcntl(fd, getlk, request)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise Unsupported(f"{family.query_command} refuses l_type F_UNLCK (EINVAL): no query of one's own "
                              "locks here") from None
        raise


def _own_lock(fd: int, family: locks.Family, start: int, length: int) -> bytes:
    """The F_UNLCK query's reply through a description that holds a lock on the range; unsupported where it does not
    report that lock, as where F_UNLCK is taken as a query for conflicting locks of others (XNU lf_getlock)."""
    _, reply = _own_query(fd, family, start, length)
    if locks.unpack_flock(reply)["l_type"] == _l_type("unlock"):
        raise Unsupported(f"{family.query_command} with l_type F_UNLCK does not report the asking description's "
                          "own lock: no query of one's own locks here")
    return reply


@pytest.mark.parametrize("family", OWN_QUERY, ids=str)
@pytest.mark.refs(OFDLOCKS + ": F_UNLCK query, l_len 0 returns the same", "Linux fcntl(2) F_OFD_GETLK")
def test_a_whole_file_f_unlck_query_reports_what_the_narrow_one_does(lockfile, family):
    require_lock_family(family)
    _, fd = lockfile
    _apply(family, fd, rd(5, 3))
    narrow = _own_lock(fd, family, 5, 1)
    _, whole = _own_query(fd, family, 0, 0)
    reported = locks.unpack_flock(narrow)
    own = locks.unpack_flock(locks.pack_flock("read", 5, 3, pid=holder_pid(family)))
    assert reported == own, f"the narrow F_UNLCK query reported {reported}, not the description's own lock {own}"
    assert whole == narrow, (f"the whole-file F_UNLCK query returned {locks.unpack_flock(whole)}, the narrow one "
                             f"{reported}")


@pytest.mark.parametrize("family", OWN_QUERY, ids=str)
@pytest.mark.parametrize("held", ["read", "write"])
@pytest.mark.refs(OFDLOCKS + ": F_UNLCK query on a description without locks", POSIX_GETLK,
                  "Linux fcntl(2) F_OFD_GETLK")
def test_an_f_unlck_query_through_a_description_without_locks_finds_none(lockfile, family, held):
    require_lock_family(family)
    path, fd = lockfile
    _apply(family, fd, lock(held, 5, 3))
    _own_lock(fd, family, 5, 1)  # the query asks about one's own locks here
    other = os.open(path, os.O_RDONLY)
    try:
        request, reply = _own_query(other, family, 0, 0)
    finally:
        os.close(other)
    assert reply == request, (f"an F_UNLCK query through a description without locks, another holding a {held} "
                              f"lock, returned {locks.unpack_flock(reply)}")


# ---- LTP fcntl14: random ranges of two processes ---------------------------------------------------------------------

FCNTL14_ROUNDS = 200  # LTP does 5000; these cover every relation of two ranges in a 16-byte file many times over
FCNTL14_SIZE = 16


class Range(NamedTuple):
    kind: str
    start: int  # absolute; requested relative to the file offset (SEEK_CUR)
    length: int


def _random_range(rng: random.Random) -> Range:
    start = rng.randrange(FCNTL14_SIZE - 1)
    return Range(rng.choice(("read", "write")), start, rng.randrange(1, FCNTL14_SIZE - start))


def _conflict(a: Range, b: Range) -> bool:
    overlap = a.start < b.start + b.length and b.start < a.start + a.length
    return overlap and "write" in (a.kind, b.kind)


def _where(seed: str, n: int, offset: int, mine: Range, theirs: Range) -> str:
    """A round, as a message names it (spelled out only for a message: hundreds of rounds pass)."""
    return f"seed {seed!r} round {n}: offset {offset}, this process {mine}, the other {theirs}"


def _l_type(kind: str) -> int:
    return locks.unpack_flock(locks.pack_flock(kind))["l_type"]


@pytest.mark.parametrize("family", RANGED, ids=str)
@pytest.mark.parametrize("mode", ["plain", "setgid_without_group_execute"])
@pytest.mark.refs(LTP + "fcntl14.c (and its S_ENFMT variant)", POSIX_GETLK, LINUX_OFD_PID,
                  "Linux fcntl(2): mandatory locking (setgid, no group execute) is no longer supported since 5.15")
def test_random_ranges_of_two_processes_conflict_exactly_when_they_overlap(lockfile, another_process, family, mode,
                                                                           observe):
    require_lock_family(family)
    path, fd = lockfile
    os.ftruncate(fd, FCNTL14_SIZE)
    if mode != "plain":
        os.chmod(path, stat.S_ISGID | 0o660)  # the old mandatory-locking mode (S_ENFMT): setgid, no group execute
        got = stat.S_IMODE(os.stat(path).st_mode)
        if got & (stat.S_ISGID | stat.S_IXGRP) != stat.S_ISGID:
            raise Unsupported(f"the file system kept mode {got:o}, not setgid without group execute")
    seed = f"fcntl14-{family}-{mode}"  # fixed: a failure reproduces on every run
    rng = random.Random(seed)
    holder, refusals = holder_pid(family), set()
    l_types = {kind: _l_type(kind) for kind in ("read", "write", "unlock")}
    with another_process(path, family) as other:
        for n in range(FCNTL14_ROUNDS):
            offset, mine, theirs = rng.randrange(FCNTL14_SIZE), _random_range(rng), _random_range(rng)
            this_round = (seed, n, offset, mine, theirs)
            os.lseek(fd, offset, os.SEEK_SET)
            family.lock(fd, mine.kind, mine.start - offset, mine.length, whence=os.SEEK_CUR)
            reply, outcome = other.probe(offset, theirs.kind, theirs.start - offset, theirs.length)
            family.unlock(fd)
            if _conflict(mine, theirs):
                shown = {name: reply[name] for name in ("l_type", "l_whence", "l_start", "l_len", "l_pid")}
                expected = dict(l_type=l_types[mine.kind], l_whence=os.SEEK_SET, l_start=mine.start,
                                l_len=mine.length, l_pid=holder)
                assert shown == expected, f"{_where(*this_round)}: the query reported {shown}, expected {expected}"
                assert outcome in ("EAGAIN", "EACCES"), f"{_where(*this_round)}: the conflicting lock was {outcome}"
                refusals.add(outcome)
            else:
                asked = locks.unpack_flock(locks.pack_flock(theirs.kind, theirs.start - offset, theirs.length,
                                                            os.SEEK_CUR))
                assert reply == {**asked, "l_type": l_types["unlock"]}, (
                    f"{_where(*this_round)}: the query reported {reply} for a free range, asked {asked}")
                assert outcome == "granted", f"{_where(*this_round)}: a lock of a free range was refused: {outcome}"
    observe("refused_with", "/".join(sorted(refusals)))
