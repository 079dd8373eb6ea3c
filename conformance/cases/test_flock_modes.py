"""flock(2) modes against each other: every pair of a held and a requested mode, between processes and between two
open file descriptions of one process, and a lock that outlives the process that took it.

A shared lock admits other shared locks and nothing else; an exclusive lock admits nothing. The owner of a flock
lock is the open file description, not the process: two open()s of one file in one process conflict like two
processes do, and a lock taken through a description another process also holds stays after its taker has exited.

Anchors: LTP testcases/kernel/syscalls/flock/flock04.c (mode pairs between processes), flock06.c (two descriptions in
one process), fstests generic/504 (the lock of an exited taker is still listed in /proc/locks).
"""

from __future__ import annotations

import errno
import os
import socket

import pytest

from conformance import locks
from conformance.harness import rights
from conformance.harness.children import Child, run_in_child
from conformance.outcomes import Unsupported
from conformance.platforms import lock_table

from ._support import data_file, errno_name, require_lock_family
from .conftest import require

LTP = "LTP testcases/kernel/syscalls/flock"
FLOCK_2 = "flock(2): at any time multiple shared locks may be applied to a file, but at no time multiple exclusive, " \
          "or both shared and exclusive"
FLOCK_OWNER = "flock(2): locks are associated with an open file description"
FLOCK = locks.family("flock")

# The family's kinds by flock's names for them: LOCK_SH and LOCK_EX.
KIND = {"shared": "read", "exclusive": "write"}
# (held, requested, conflict): flock04's four combinations.
PAIRS = [("shared", "shared", False), ("shared", "exclusive", True), ("exclusive", "shared", True),
         ("exclusive", "exclusive", True)]
PAIR_IDS = [f"{held}-{asked}" for held, asked, _ in PAIRS]
CONFLICTING = [pytest.param(held, asked, id=f"{held}-{asked}") for held, asked, conflict in PAIRS if conflict]


@pytest.fixture
def lockfile(workdir):
    fd = data_file(workdir, "locked", b"\0" * 64)
    yield workdir / "locked", fd
    os.close(fd)


def _try(fd: int, mode: str) -> str:
    """A non-blocking flock of this mode: "granted", or "refused:<errno>" (the lock stays with fd if granted)."""
    try:
        FLOCK.lock(fd, KIND[mode])
    except OSError as e:
        return f"refused:{errno_name(e)}"
    return "granted"


def _try_through_a_description_of_its_own(path: str, mode: str) -> str:
    """In another process: open the file again and try the mode (a granted lock ends with the process)."""
    fd = os.open(path, os.O_RDWR)
    try:
        return _try(fd, mode)
    finally:
        os.close(fd)


def _assert_answer(answer: str, conflict: bool, what: str) -> None:
    if conflict:
        assert answer == f"refused:{errno_name(errno.EWOULDBLOCK)}", f"{what}: {answer}, not EWOULDBLOCK"
    else:
        assert answer == "granted", f"{what}: {answer}"


# ---- LTP flock04: between processes --------------------------------------------------------------------------------

@pytest.mark.parametrize(("held", "asked", "conflict"), PAIRS, ids=PAIR_IDS)
@pytest.mark.refs(f"{LTP}/flock04.c", FLOCK_2, "flock(2): EWOULDBLOCK the file is locked and LOCK_NB was selected")
def test_a_mode_requested_by_another_process(lockfile, held, asked, conflict):
    require_lock_family(FLOCK)
    path, fd = lockfile
    FLOCK.lock(fd, KIND[held])
    answer = run_in_child(_try_through_a_description_of_its_own, os.fspath(path), asked)
    _assert_answer(answer, conflict, f"{asked} requested by another process while {held} is held")


# ---- LTP flock06: two descriptions in one process ------------------------------------------------------------------

@pytest.mark.parametrize(("held", "asked", "conflict"), PAIRS, ids=PAIR_IDS)
@pytest.mark.refs(f"{LTP}/flock06.c", FLOCK_2, FLOCK_OWNER)
def test_a_mode_requested_through_another_description_of_the_same_process(lockfile, held, asked, conflict):
    require_lock_family(FLOCK)
    path, fd = lockfile
    other = os.open(path, os.O_RDWR)
    try:
        FLOCK.lock(fd, KIND[held])
        _assert_answer(_try(other, asked), conflict, f"{asked} through a second open() while {held} is held")
    finally:
        os.close(other)


@pytest.mark.parametrize(("held", "asked"), CONFLICTING)
@pytest.mark.refs(f"{LTP}/flock06.c: after LOCK_UN the third attempt succeeds", FLOCK_OWNER)
def test_after_lock_un_another_description_of_the_process_gets_the_lock(lockfile, held, asked):
    require_lock_family(FLOCK)
    path, fd = lockfile
    other = os.open(path, os.O_RDWR)
    try:
        FLOCK.lock(fd, KIND[held])
        _assert_answer(_try(other, asked), True, f"{asked} through a second open() while {held} is held")
        FLOCK.unlock(fd)
        _assert_answer(_try(other, asked), False, f"{asked} through a second open() after LOCK_UN of the {held} lock")
    finally:
        os.close(other)


# ---- fstests generic/504: the lock of a taker that has exited ------------------------------------------------------

def _lock_inherited(fd: int) -> int:
    """In a forked child sharing the parent's description: take the lock, then exit without releasing it."""
    FLOCK.lock(fd, "write")
    return os.getpid()


def _open_lock_and_send(path: str, sock: socket.socket) -> int:
    """In a child: open the file, lock it, pass the descriptor to the parent, then exit."""
    fd = os.open(path, os.O_RDWR)
    try:
        FLOCK.lock(fd, "write")
        rights.send_fds(sock, [fd])
    finally:
        os.close(fd)
    return os.getpid()


def _described_by_a_taker_that_exited(path, fd: int, how: str) -> tuple[int, int]:
    """(descriptor of the locked description, pid of its exited taker): the description lives on in this process."""
    if how == "inherited":
        with Child(_lock_inherited, fd) as child:
            return os.dup(fd), child.join()
    require("scm_rights")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with Child(_open_lock_and_send, os.fspath(path), a) as child:
            taker = child.join()
        received = rights.recv_fds(b, 1).take()
        assert len(received) == 1, f"{len(received)} descriptors arrived, 1 was sent"
        return received[0], taker
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("how", ["inherited", "passed"])
@pytest.mark.refs("fstests generic/504: flock(1) locks an inherited fd and exits; /proc/locks still lists the lock",
                  FLOCK_OWNER, "proc_locks(5)")
def test_a_flock_lock_whose_taker_exited_stays_in_the_lock_table(lockfile, how, observe):
    require_lock_family(FLOCK)
    path, fd = lockfile
    if lock_table.held(path) is None:
        raise Unsupported("the kernel lists no table of file locks here (Linux /proc/locks)")
    kept, taker = _described_by_a_taker_that_exited(path, fd, how)
    try:
        listed = lock_table.held(path)
        observe("exited_taker_pid", "taker" if any(pid == str(taker) for _, _, pid in listed) else
                ",".join(pid for _, _, pid in listed) or None)
        assert ("FLOCK", "WRITE") in {(kind, mode) for kind, mode, _ in listed}, (
            f"no exclusive flock lock on the file's inode in the lock table after its taker exited: {listed}")
    finally:
        os.close(kept)
