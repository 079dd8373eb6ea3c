"""Lock semantics across close, fork and descriptor passing: OFD, classic POSIX and flock.

The seed's headline (seed 001): a classic POSIX lock belongs to the process and dies when the process closes
*any* descriptor of the file, one received over a socket included; an OFD or flock lock belongs to the open file
description and dies with its last descriptor. Every check asks from a third process (conformance.locks.holder),
so looking never changes what is held.

Anchors: POSIX.1-2024 XSH fcntl() (F_SETLK, F_OFD_SETLK) and close(), Linux fcntl(2) "Open file description
locks", flock(2), fstests generic/478 (t_ofd_locks), FreeBSD tests/sys/file/flock_test.c.
"""

from __future__ import annotations

import os
import socket

import pytest

from conformance import locks
from conformance.harness import rights
from conformance.harness.children import Child
from conformance.outcomes import Unsupported

from ._support import data_file
from .conftest import require

SEED = "seed 001: classic POSIX locks are released by any close; OFD locks belong to the description"
POSIX_FCNTL = "POSIX.1-2024 XSH fcntl(): locks are released on any close of the file by the process"
POSIX_OFD = "POSIX.1-2024 XSH fcntl(): F_OFD_SETLK, owned by the open file description"
LINUX_OFD = "Linux fcntl(2): Open file description locks (non-POSIX)"
FLOCK = "flock(2): locks are associated with the open file description"
DESCRIPTION_FAMILIES = ["ofd", "flock"]
PROBE = {"posix": "posix_locks", "ofd": "ofd_locks", "flock": "flock"}


def _family(family: str) -> None:
    require(PROBE[family])
    try:
        locks.available(family)
    except locks.LockFamilyUnavailable as e:
        raise Unsupported(e.reason) from None


@pytest.fixture
def lockfile(workdir):
    fd = data_file(workdir, "locked", b"\0" * 64)
    yield workdir / "locked", fd
    try:
        os.close(fd)
    except OSError:
        pass  # the case closed it on purpose


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
def test_classic_lock_is_released_by_closing_any_descriptor_of_the_file(lockfile, how):
    _family("posix")
    path, fd = lockfile
    locks.set_lock(fd, "posix", "write", 0, 10)
    other = _another_descriptor(path, fd, how)
    try:
        held = locks.holder(path, "posix")
        assert held is not None and held.pid == os.getpid(), f"the classic lock is not held as taken: {held}"
    finally:
        os.close(other)
    held = locks.holder(path, "posix")
    assert held is None, f"closing a {how} descriptor left the process's classic lock in place: {held}"


@pytest.mark.parametrize("family", DESCRIPTION_FAMILIES)
@pytest.mark.parametrize("how", HOW)
@pytest.mark.refs(SEED, POSIX_OFD, LINUX_OFD, FLOCK)
def test_description_lock_survives_the_close_of_another_descriptor(lockfile, family, how, observe):
    _family(family)
    path, fd = lockfile
    locks.set_lock(fd, family, "write")
    os.close(_another_descriptor(path, fd, how))
    held = locks.holder(path, family)
    assert held is not None, f"closing a {how} descriptor released the {family} lock of another description"
    if family == "ofd":
        observe("holder_pid", held.pid)  # OFD holders have no process: -1 expected


@pytest.mark.parametrize("family", DESCRIPTION_FAMILIES)
@pytest.mark.refs(SEED, POSIX_OFD, LINUX_OFD, FLOCK)
def test_description_lock_is_released_by_the_last_close_of_its_description(lockfile, family):
    _family(family)
    path, fd = lockfile
    locks.set_lock(fd, family, "write")
    copy = os.dup(fd)
    os.close(fd)
    assert locks.holder(path, family) is not None, "the lock went with the first of two descriptors"
    os.close(copy)
    assert locks.holder(path, family) is None, f"the {family} lock outlived the last descriptor of its description"


# ---- fork ---------------------------------------------------------------------------------------------------------

def _unlock_in_child(fd: int, family: str) -> None:
    locks.unlock(fd, family)


def _exit_in_child(fd: int) -> None:
    os.close(fd)


@pytest.mark.parametrize("family", DESCRIPTION_FAMILIES)
@pytest.mark.refs(LINUX_OFD + ": shared across fork", FLOCK + ": duplicates share the lock", POSIX_OFD)
def test_description_lock_is_shared_with_a_forked_child(lockfile, family):
    _family(family)
    path, fd = lockfile
    locks.set_lock(fd, family, "write")
    with Child(_exit_in_child, fd) as child:
        child.join()
    assert locks.holder(path, family) is not None, "a child's close and exit released the parent's lock"
    with Child(_unlock_in_child, fd, family) as child:
        child.join()
    assert locks.holder(path, family) is None, "the child's unlock through the shared description did not release it"


def _try_lock(path: str) -> str:
    fd = os.open(path, os.O_RDWR)
    try:
        locks.set_lock(fd, "posix", "write", 0, 10)
    except OSError as e:
        return f"refused:{e.errno}"
    finally:
        os.close(fd)
    return "granted"


def _inherited_fd_locks(fd: int) -> str:
    """In a forked child: try the parent's range through the inherited descriptor (not an inherited lock)."""
    try:
        locks.set_lock(fd, "posix", "write", 0, 10)
    except OSError:
        return "refused"
    return "granted"


@pytest.mark.refs(POSIX_FCNTL + "; fork(): 'Record locks set by the parent process shall not be inherited'",
                  "Linux fcntl(2): record locks are not inherited by a child created via fork")
def test_classic_locks_are_not_inherited_by_a_forked_child(lockfile):
    _family("posix")
    path, fd = lockfile
    locks.set_lock(fd, "posix", "write", 0, 10)
    with Child(_inherited_fd_locks, fd) as child:
        assert child.join() == "refused", "the child could lock the parent's range: the lock was inherited"
    held = locks.holder(path, "posix")
    assert held is not None and held.pid == os.getpid(), f"the child's exit changed the parent's lock: {held}"


# ---- descriptor passing -------------------------------------------------------------------------------------------

def _lock_and_send(path: str, family: str, sock) -> None:
    fd = os.open(path, os.O_RDWR)
    locks.set_lock(fd, family, "write")
    rights.send_fds(sock, [fd])
    os.close(fd)  # and then exit: only the copy in flight keeps the description, and its lock, alive


@pytest.mark.parametrize("family", DESCRIPTION_FAMILIES)
@pytest.mark.refs(SEED, POSIX_OFD, FLOCK, "POSIX.1-2024 XBD <sys/socket.h> SCM_RIGHTS")
def test_description_lock_travels_with_a_passed_descriptor(lockfile, family):
    _family(family)
    require("scm_rights")
    path, _ = lockfile
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with Child(_lock_and_send, os.fspath(path), family, a) as child:
            child.join()  # the sender has exited
        with rights.recv_fds(b, 1) as got:
            assert len(got.fds) == 1
            held = locks.holder(path, family)
            assert held is not None, f"the {family} lock died with its sender although its description lives on"
            locks.unlock(got.fds[0], family)
            assert locks.holder(path, family) is None, "the receiver could not release the lock it was sent"
    finally:
        a.close()
        b.close()


@pytest.mark.refs(SEED + " (the headline: closing a received descriptor drops the receiver's classic lock)",
                  POSIX_FCNTL)
def test_classic_lock_vanishes_when_the_receiver_closes_its_received_copy(lockfile):
    _family("posix")
    path, fd = lockfile
    locks.set_lock(fd, "posix", "write", 0, 10)
    received = _another_descriptor(path, fd, "received_over_a_socket")
    try:
        assert locks.holder(path, "posix") is not None, "receiving a descriptor released the classic lock"
    finally:
        os.close(received)  # a descriptor of the same file, from another process, never used for locking
    assert locks.holder(path, "posix") is None, "the classic lock survived the close of the received descriptor"
