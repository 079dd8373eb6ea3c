"""Descriptor passing with SCM_RIGHTS over AF_UNIX stream, datagram and seqpacket sockets.

Anchors: FreeBSD tests/sys/kern/unix_passfd_test.c (named per case), Linux
tools/testing/selftests/net/af_unix/scm_rights.c, POSIX.1-2024 XBD <sys/socket.h> (SCM_RIGHTS) and
XSH sendmsg()/recvmsg(). Every received descriptor is closed on every path (rights.Received owns them).
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import socket
import stat
import time

import pytest

from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.harness.children import run_in_child
from conformance.harness.deadlines import deadline
from conformance.harness.privileges import drop_privileges
from conformance.outcomes import Unsupported
from conformance.platforms import lookup, socket_table

from ._support import (
    RELEASE_WAIT,
    InFlightMarker,
    data_file,
    errno_name,
    nothing_queued,
    raise_nofile_limit,
    same_file,
)
from .conftest import require, unix_socketpair

PASSFD = "FreeBSD tests/sys/kern/unix_passfd_test.c"
POSIX_RIGHTS = "POSIX.1-2024 XBD <sys/socket.h>: SCM_RIGHTS"
POSIX_OFD = "POSIX.1-2024 XBD 3.253 Open File Description"
KSELFTEST_GC = "Linux tools/testing/selftests/net/af_unix/scm_rights.c"
APUE = "APUE 3e 17.4 Passing File Descriptors (seed 000)"


def _send_one(a, fd, data=b"x") -> None:
    assert rights.send_fds(a, [fd], data) == len(data)


def _recv_one(b) -> rights.Received:
    got = rights.recv_fds(b, 1)
    if len(got.fds) != 1:
        got.close()
        raise AssertionError(f"expected 1 descriptor, got {len(got.fds)} (flags {got.flags:#x})")
    return got


# ---- one descriptor: the same open file description arrives ----------------------------------------------------

@pytest.mark.refs(f"{PASSFD}: simple_send_fd", POSIX_RIGHTS, APUE)
def test_passed_descriptor_is_the_same_file(pair, workdir):
    a, b = pair
    fd = data_file(workdir)
    try:
        _send_one(a, fd)
        with _recv_one(b) as got:
            assert same_file(fd, got.fds[0]), "received descriptor names another file (device/inode differ)"
    finally:
        os.close(fd)


@pytest.mark.refs(POSIX_OFD, APUE, "sendmsg(2)/unix(7): the receiver gets a duplicate of the sender's descriptor")
def test_passed_descriptor_shares_the_file_offset(pair, workdir):
    a, b = pair
    fd = data_file(workdir)
    try:
        _send_one(a, fd)
        with _recv_one(b) as got:
            os.lseek(got.fds[0], 7, os.SEEK_SET)
            assert os.lseek(fd, 0, os.SEEK_CUR) == 7, "lseek through the received descriptor did not move the sender's"
    finally:
        os.close(fd)


@pytest.mark.parametrize("flag", ["O_APPEND", "O_NONBLOCK"])
@pytest.mark.refs(POSIX_OFD, "POSIX.1-2024 XSH fcntl(): F_SETFL sets the file status flags of the description")
def test_passed_descriptor_shares_status_flags(pair, workdir, flag):
    a, b = pair
    fd = data_file(workdir)
    bit = getattr(os, flag)
    try:
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & bit
        _send_one(a, fd)
        with _recv_one(b) as got:
            fcntl.fcntl(got.fds[0], fcntl.F_SETFL, fcntl.fcntl(got.fds[0], fcntl.F_GETFL) | bit)
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & bit, f"{flag} set by the receiver is not seen by the sender"
    finally:
        os.close(fd)


@pytest.mark.refs(POSIX_OFD, "POSIX.1-2024 XSH write(): EBADF if fildes is not open for writing")
def test_passed_descriptor_keeps_its_access_mode(pair, workdir):
    a, b = pair
    fd = data_file(workdir, flags=os.O_RDONLY)
    try:
        _send_one(a, fd)
        with _recv_one(b) as got:
            assert fcntl.fcntl(got.fds[0], fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
            with pytest.raises(OSError) as e:
                os.write(got.fds[0], b"no")
            assert e.value.errno == errno.EBADF, f"write through a read-only descriptor: {errno_name(e.value)}"
            assert os.read(got.fds[0], 4) == b"0123"
    finally:
        os.close(fd)


# ---- several descriptors -------------------------------------------------------------------------------------

@pytest.mark.refs(f"{PASSFD}: two_files", "CPython Lib/test/test_socket.py SCMRightsTest.testFDPassMulti", POSIX_RIGHTS)
def test_several_descriptors_in_one_message_arrive_in_order(pair, workdir):
    a, b = pair
    sent = [data_file(workdir, f"f{i}", bytes([i])) for i in range(5)]
    try:
        assert rights.send_fds(a, sent) == 1
        with rights.recv_fds(b, len(sent)) as got:
            assert len(got.fds) == len(sent), f"{len(got.fds)} of {len(sent)} descriptors arrived"
            assert [fdlist.identity(fd) for fd in got.fds] == [fdlist.identity(fd) for fd in sent], "order changed"
    finally:
        for fd in sent:
            os.close(fd)


@pytest.mark.refs(f"{PASSFD}: two_files", POSIX_RIGHTS)
def test_descriptors_in_several_messages_arrive_in_order(pair, workdir):
    a, b = pair
    sent = [data_file(workdir, f"f{i}", bytes([i])) for i in range(3)]
    try:
        for i, fd in enumerate(sent):
            _send_one(a, fd, bytes([65 + i]))
        for i, fd in enumerate(sent):
            with _recv_one(b) as got:
                assert got.data == bytes([65 + i]), f"message {i} carried {got.data!r}"
                assert same_file(got.fds[0], fd), f"message {i} carried another file"
    finally:
        for fd in sent:
            os.close(fd)


@pytest.mark.refs("CPython Lib/test/test_socket.py SCMRightsTest.testFDPassSeparate",
                  "POSIX.1-2024 XSH sendmsg(): msg_control may hold several ancillary data objects",
                  "XNU bsd/kern/uipc_usrreq.c unp_internalize (one cmsg only)")
def test_two_rights_messages_in_one_sendmsg(pair, workdir, observe):
    a, b = pair
    first, second = data_file(workdir, "one", b"1"), data_file(workdir, "two", b"2")
    try:
        try:
            rights.send_fds(a, None, groups=[[first], [second]])
        except OSError as e:
            observe("two_cmsgs", f"refused:{errno_name(e)}")
            assert nothing_queued(b), "sendmsg failed yet something was queued"
            return
        with rights.recv_fds(b, 2, controllen=2 * rights.rights_space(1)) as got:
            observe("two_cmsgs", "separate" if len(got.groups) == 2 else "coalesced")
            assert not got.ctrunc, "control data truncated although sized for two cmsgs"
            assert len(got.fds) == 2, f"{len(got.fds)} of 2 descriptors arrived"
            assert same_file(got.fds[0], first) and same_file(got.fds[1], second), "order or files changed"
    finally:
        os.close(first)
        os.close(second)


# ---- the per-message maximum ---------------------------------------------------------------------------------

def _find_maximum(kind: str, ceiling: int) -> dict:
    """In a child (its own RLIMIT_NOFILE): the largest count one SCM_RIGHTS message accepts, by bisection."""
    limit = raise_nofile_limit(4096)
    budget = (limit if limit != resource.RLIM_INFINITY else 4096) - len(fdlist.open_fds()) - 16
    if budget < 300:
        raise Unsupported(f"RLIMIT_NOFILE {limit} leaves room for only {budget} received descriptors")
    a, b = unix_socketpair(kind)
    a.setblocking(False)
    null = os.open(os.devnull, os.O_RDONLY)

    def attempt(n: int):
        """None when n descriptors went through whole; the errno name when sendmsg refused them."""
        try:
            rights.send_fds(a, [null] * n)
        except OSError as e:
            assert nothing_queued(b), f"sendmsg of {n} descriptors failed ({errno_name(e)}) but queued data"
            return errno_name(e)
        with rights.recv_fds(b, n) as got:
            assert len(got.fds) == n and not got.ctrunc, f"sent {n} descriptors, {len(got.fds)} arrived"
        return None

    try:
        good, bad, bad_errno = 1, min(ceiling, budget), None
        assert attempt(good) is None, "one descriptor could not be sent"
        bad_errno = attempt(bad)
        if bad_errno is None:
            return {"maximum": None, "ceiling": bad, "errno": None}
        while bad - good > 1:
            middle = (good + bad) // 2
            result = attempt(middle)
            if result is None:
                good = middle
            else:
                bad, bad_errno = middle, result
        return {"maximum": good, "ceiling": bad, "errno": bad_errno}
    finally:
        os.close(null)
        a.close()
        b.close()


@pytest.mark.refs(f"{PASSFD}: send_a_lot", "Linux include/net/scm.h SCM_MAX_FD",
                  "CPython Lib/test/test_socket.py SCMRightsTest.testCmsgTruncLen (limits)")
def test_per_message_maximum_and_one_more(socktype, observe):
    require("scm_rights")
    found = run_in_child(_find_maximum, socktype, 1024, timeout=deadline(30))
    observe("max_fds_per_message", found["maximum"])
    observe("max_plus_one_errno", found["errno"])
    assert found["maximum"] is not None, f"{found['ceiling']} descriptors in one message were accepted: no limit found"
    assert found["errno"] is not None


# ---- lifetime of descriptors in flight -----------------------------------------------------------------------

@pytest.mark.race("a send racing the sender's close")
@pytest.mark.refs(f"{PASSFD}: send_and_close", POSIX_RIGHTS)
def test_sender_may_close_before_the_receiver_receives(pair):
    a, b = pair
    with InFlightMarker() as marker:
        _send_one(a, marker.w)
        marker.drop_local()
        assert marker.kept_for(0), "the write end closed while in flight"
        with _recv_one(b) as got:
            os.write(got.fds[0], b"alive")
            assert os.read(marker.r, 5) == b"alive"


@pytest.mark.race("in-flight release racing the close of both ends")
@pytest.mark.refs(f"{PASSFD}: send_and_cancel", f"{PASSFD}: devfs_orphan", KSELFTEST_GC)
@pytest.mark.parametrize("what", ["pipe", "dev_null"])
def test_descriptors_in_flight_are_released_when_both_ends_close(socktype, what):
    require("scm_rights")
    a, b = unix_socketpair(socktype)
    extra = os.open(os.devnull, os.O_RDONLY) if what == "dev_null" else None
    try:
        with InFlightMarker() as marker:
            rights.send_fds(a, [marker.w] + ([extra] if extra is not None else []))
            marker.drop_local()
            a.close()
            b.close()
            assert marker.released(), "descriptor in flight was not released after both ends closed"
    finally:
        a.close()
        b.close()
        if extra is not None:
            os.close(extra)


@pytest.mark.refs(f"{PASSFD}: send_and_shutdown", "POSIX.1-2024 XSH shutdown(): SHUT_RD disables further receive")
def test_shutdown_rd_with_descriptors_queued(pair, observe):
    a, b = pair
    with InFlightMarker() as marker:
        _send_one(a, marker.w)
        marker.drop_local()
        b.shutdown(socket.SHUT_RD)
        # Disposal is synchronous where it happens (FreeBSD unp_dispose); the short window only shows "kept".
        disposed = not marker.kept_for(0.05)
        observe("shutdown_rd_disposes_queued", disposed)
        try:
            got = rights.recv_fds(b, 1, flags=socket.MSG_DONTWAIT)
        except BlockingIOError:
            got = rights.Received()
        with got:
            observe("shutdown_rd_then_recv", f"{len(got.fds)} fds, {len(got.data)} bytes")
            if disposed:
                assert not got.fds, "queued descriptors were disposed yet one was still received"
            elif got.fds:
                assert os.write(got.fds[0], b"k") == 1
        a.close()
        b.close()
        assert marker.released(), "the queued descriptor was never released"


# ---- receive flags -------------------------------------------------------------------------------------------

@pytest.mark.refs(f"{PASSFD}: simple_send_fd_msg_cmsg_cloexec", "Linux recvmsg(2) MSG_CMSG_CLOEXEC",
                  "POSIX.1-2024 XSH recvmsg(): MSG_CMSG_CLOEXEC")
def test_msg_cmsg_cloexec_sets_close_on_exec(pair, workdir):
    require("msg_cmsg_cloexec")
    flag = lookup("MSG_CMSG_CLOEXEC", socket)
    a, b = pair
    fd = data_file(workdir)
    try:
        _send_one(a, fd)
        _send_one(a, fd)
        with rights.recv_fds(b, 1, flags=flag) as got:
            assert len(got.fds) == 1 and fdlist.is_cloexec(got.fds[0]), "FD_CLOEXEC not set with MSG_CMSG_CLOEXEC"
        with _recv_one(b) as got:
            assert not fdlist.is_cloexec(got.fds[0]), "FD_CLOEXEC set without MSG_CMSG_CLOEXEC"
    finally:
        os.close(fd)


@pytest.mark.refs("XNU tests/scm_rights_leak.c (MSG_PEEK yields zero-filled rights)",
                  "Linux net/unix/af_unix.c unix_peek_fds (MSG_PEEK installs duplicates)",
                  "POSIX.1-2024 XSH recvmsg(): MSG_PEEK leaves the data queued")
def test_msg_peek_on_a_message_with_descriptors(pair, observe):
    a, b = pair
    r, w = os.pipe()
    try:
        _send_one(a, w, b"peek")
        before = fdlist.open_fds()
        data, ancdata, flags, _ = b.recvmsg(16, rights.rights_space(1), socket.MSG_PEEK)
        # Parse by hand: a zero-filled peek would name fd 0, which must not be closed.
        peeked = rights.parse(data, ancdata, flags).take()
        new = [fd for fd in peeked if fd not in before]
        try:
            if not peeked:
                observe("msg_peek", "no descriptors")
            elif all(same_file(fd, w) for fd in peeked) and len(new) == len(peeked):
                observe("msg_peek", "duplicates installed")
            else:
                observe("msg_peek", f"other: {peeked}")
            assert data == b"peek", f"MSG_PEEK returned {data!r}"
            assert len(new) == len(peeked), f"MSG_PEEK named descriptors that were not new: {peeked}"
            for fd in new:
                assert same_file(fd, w), "a peeked descriptor names another file"
        finally:
            for fd in new:
                os.close(fd)
        with _recv_one(b) as got:
            assert got.data == b"peek" and same_file(got.fds[0], w), "the message after MSG_PEEK lost its descriptor"
    finally:
        os.close(r)
        os.close(w)


# ---- kinds of descriptor -------------------------------------------------------------------------------------

def _make_kind(kind: str, workdir, sender: socket.socket):
    """(descriptor to send, extra descriptors to close, a check on the received descriptor)."""
    if kind == "regular_file":
        fd = data_file(workdir, content=b"regular")
        return fd, [fd], lambda got: os.pread(got, 7, 0) == b"regular"
    if kind == "directory":
        (workdir / "entry").write_bytes(b"")
        fd = os.open(workdir, os.O_RDONLY)
        return fd, [fd], lambda got: "entry" in os.listdir(got) if os.listdir in os.supports_fd else True
    if kind in ("pipe_read_end", "pipe_write_end"):
        r, w = os.pipe()
        if kind == "pipe_read_end":
            return r, [r, w], lambda got: os.write(w, b"p") == 1 and os.read(got, 1) == b"p"
        return w, [r, w], lambda got: os.write(got, b"p") == 1 and os.read(r, 1) == b"p"
    if kind == "socket":
        s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fd1, fd2 = s1.detach(), s2.detach()
        return fd1, [fd1, fd2], lambda got: os.write(got, b"s") == 1 and os.read(fd2, 1) == b"s"
    if kind == "dev_null":
        fd = os.open(os.devnull, os.O_WRONLY)
        return fd, [fd], lambda got: os.write(got, b"n") == 1
    if kind == "sending_socket":
        return sender.fileno(), [], lambda got: stat.S_ISSOCK(os.fstat(got).st_mode)
    raise ValueError(kind)


KINDS = ["regular_file", "directory", "pipe_read_end", "pipe_write_end", "socket", "dev_null", "sending_socket"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.refs(f"{PASSFD}: simple_send_fd, devfs_orphan, bundle", POSIX_RIGHTS)
def test_kind_of_descriptor_can_be_passed(pair, workdir, kind):
    a, b = pair
    fd, owned, works = _make_kind(kind, workdir, a)
    try:
        _send_one(a, fd)
        with _recv_one(b) as got:
            assert same_file(got.fds[0], fd), f"received {kind} names another object"
            assert works(got.fds[0]), f"the received {kind} does not work"
    finally:
        for extra in owned:
            os.close(extra)


# ---- garbage collection of unreachable sockets ----------------------------------------------------------------

def _assert_reclaimed(marker: InFlightMarker, inodes: list, kind: str) -> None:
    """The cycle's sockets, and the pipe end they carried, are freed once the collector runs.

    Linux (seen on 6.18) starts the collector when some unix socket is released while descriptors are in
    flight, not necessarily at the close that made the cycle unreachable: closing an unrelated pair is the
    ordinary trigger, as any later socket activity would be.
    """
    trigger_a, trigger_b = unix_socketpair(kind)
    trigger_a.close()
    trigger_b.close()
    assert marker.released(), "the unreachable sockets were never collected (the pipe end they carried stayed open)"
    deadline = time.monotonic() + RELEASE_WAIT
    while True:
        listed = socket_table.listed_inodes()
        left = set(inodes) & listed if listed is not None else set()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.001)  # the sockets' own release may trail the pipe's (deferred fput): poll the table
    assert not left, f"sockets with inodes {sorted(left)} are still listed after the collection"


def _self_reference(a: socket.socket, b: socket.socket, marker: int) -> None:
    rights.send_fds(a, [b.fileno(), marker])  # b holds a reference to itself in its own queue


def _cycle(a: socket.socket, b: socket.socket, marker: int) -> None:
    rights.send_fds(a, [a.fileno(), marker])  # a sits in b's queue
    rights.send_fds(b, [b.fileno()])  # and b in a's


@pytest.mark.race("in-flight garbage collection")
@pytest.mark.parametrize("shape", [_self_reference, _cycle], ids=["self_reference", "cycle"])
@pytest.mark.refs(f"{PASSFD}: bundle_cancel", f"{KSELFTEST_GC}: self-reference and cycle graphs")
def test_unreachable_sockets_in_flight_are_reclaimed(socktype, shape):
    require("scm_rights")
    a, b = unix_socketpair(socktype)
    inodes = [os.fstat(s.fileno()).st_ino for s in (a, b)]
    try:
        with InFlightMarker() as marker:  # it rides in the graph: its EOF proves the graph was freed
            shape(a, b, marker.w)
            marker.drop_local()
            a.close()
            b.close()
            _assert_reclaimed(marker, inodes, socktype)
    finally:
        a.close()
        b.close()


# ---- zero-length payloads ------------------------------------------------------------------------------------

@pytest.mark.refs(f"{PASSFD}: empty_rights_message", "CPython Lib/test/test_socket.py SCMRightsTest.testFDPassEmpty",
                  "Linux net/unix/af_unix.c unix_stream_sendmsg (a zero-length send queues nothing)")
def test_zero_length_payload_with_descriptors(pair, observe):
    a, b = pair
    with InFlightMarker() as marker:
        sent = rights.send_fds(a, [marker.w], b"")
        assert sent == 0, f"a zero-length sendmsg returned {sent}"
        marker.drop_local()
        try:
            got = rights.recv_fds(b, 1, flags=socket.MSG_DONTWAIT)
        except BlockingIOError:
            observe("zero_length", "dropped")
            assert marker.released(), "the descriptor of a dropped zero-length message was never released"
            return
        with got:
            observe("zero_length", "delivered" if got.fds else "empty message, no descriptor")
            assert got.data == b"", f"a zero-length message arrived with {got.data!r}"
            assert len(got.fds) == 1, "a message arrived but its descriptor did not"
            os.write(got.fds[0], b"z")
            assert os.read(marker.r, 1) == b"z"


# ---- the receiver's table full, the peer's buffer full ---------------------------------------------------------

def _receive_with_full_table(kind: str) -> dict:
    a, b = unix_socketpair(kind)
    marker = InFlightMarker()
    rights.send_fds(a, [marker.w], b"data")
    marker.drop_local()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    filler = os.open(os.devnull, os.O_RDONLY)
    fillers = [filler]
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(fdlist.open_fds()) + 1, hard))
        try:
            while True:
                fillers.append(os.dup(filler))
        except OSError as e:
            assert e.errno == errno.EMFILE, f"filling the table: {errno_name(e)}"
        result = {}
        try:
            with rights.recv_fds(b, 1) as got:
                result["result"] = "MSG_CTRUNC" if got.ctrunc else f"{len(got.fds)} fds, no MSG_CTRUNC"
                result["data"] = got.data.decode(errors="replace")
                assert not got.fds, "a descriptor was installed into a full table"
                assert got.ctrunc, "the descriptor was dropped without MSG_CTRUNC"
        except OSError as e:
            result["result"] = errno_name(e)
            for fd in fillers[-4:]:
                os.close(fd)
            del fillers[-4:]  # room for the descriptor, if the platform kept it
            try:
                with rights.recv_fds(b, 1, flags=socket.MSG_DONTWAIT) as again:
                    result["data"] = again.data.decode(errors="replace")
                    result["fd_after_retry"] = len(again.fds)
            except BlockingIOError:
                result["data"] = ""
        a.close()
        b.close()
        result["released"] = marker.released()
        return result
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        a.close()
        b.close()
        marker.close()


@pytest.mark.refs(f"{PASSFD}: send_a_lot (EMSGSIZE with RLIMIT_NOFILE reached)",
                  "Linux net/core/scm.c scm_detach_fds (MSG_CTRUNC when no descriptor can be installed)")
def test_receiver_descriptor_table_full(socktype, observe):
    require("scm_rights")
    result = run_in_child(_receive_with_full_table, socktype)
    observe("table_full_result", result["result"])
    observe("table_full_data_kept", result.get("data") == "data")
    assert result["released"], "the descriptor that could not be installed was never released"


def _fill_peer(kind: str) -> dict:
    # Unprivileged, descriptors in flight are capped per user at RLIMIT_NOFILE (Linux); raise it so the
    # buffer, not other cases' descriptors in flight, is what stops the sender.
    raise_nofile_limit(4096)
    a, b = unix_socketpair(kind)
    a.setblocking(False)
    payload = b"f" * 4096
    count, failure = 0, None
    try:
        with InFlightMarker() as marker:
            while count < 100_000:
                try:
                    rights.send_fds(a, [marker.w], payload)
                except OSError as e:
                    failure = errno_name(e)
                    break
                count += 1
            marker.drop_local()
            a.close()
            b.close()
            return {"queued": count, "errno": failure, "released": marker.released()}
    finally:
        a.close()
        b.close()


@pytest.mark.refs(f"{PASSFD}: send_overflow (EAGAIN stream, ENOBUFS datagram)", "POSIX.1-2024 XSH sendmsg(): EAGAIN")
def test_peer_buffer_full_refuses_without_leaking(socktype, observe):
    require("scm_rights")
    result = run_in_child(_fill_peer, socktype, timeout=deadline(30))
    observe("buffer_full_errno", result["errno"])
    assert result["errno"] in ("EAGAIN", "EWOULDBLOCK", "ENOBUFS", "ETOOMANYREFS"), \
        f"filling the peer ended with {result['errno']} after {result['queued']} messages"
    assert result["released"], "descriptors queued in a full buffer were never released"


# ---- the sender's in-flight limit ----------------------------------------------------------------------------

def _exceed_inflight(limit: int) -> dict:
    # The count is per user: as root, become a uid of this run's own so that no other process's descriptors
    # in flight are counted (and ours do not count against anyone else).
    drop_privileges(0x7FF00000 + os.getpid() % 0x10000)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = os.open(os.devnull, os.O_RDONLY)
    sent, failure = 0, None
    try:
        while sent < limit * 4:
            try:
                rights.send_fds(a, [fd])
            except OSError as e:
                failure = errno_name(e)
                break
            sent += 1
        return {"sent": sent, "errno": failure}
    finally:
        os.close(fd)
        a.close()
        b.close()


@pytest.mark.refs("Linux unix(7): ETOOMANYREFS", "Linux net/unix/af_unix.c too_many_unix_fds (since 4.5)")
def test_unprivileged_sender_is_limited_by_its_inflight_count(observe, expected):
    require("scm_rights")
    refusal = expected("inflight_limit_errno")  # the errno this platform documents for it, or unsupported
    limit = 64
    result = run_in_child(_exceed_inflight, limit)
    # Not the count: run unprivileged, the user's other processes' descriptors in flight count too.
    observe("inflight_limit_errno", result["errno"])
    assert result["errno"] == refusal, f"sending {result['sent']} in-flight descriptors ended with {result['errno']}"
    # The limit is checked before the message's own descriptor is counted, so one send may reach limit + 1.
    assert result["sent"] <= limit + 1, f"{result['sent']} descriptors in flight with RLIMIT_NOFILE {limit}"


# ---- a receiver that refuses descriptors (Linux SO_PASSRIGHTS, 6.16) ------------------------------------------------

PASSRIGHTS = "Linux tools/testing/selftests/net/af_unix/scm_rights.c: the *_disabled variants (SO_PASSRIGHTS)"
PASSRIGHTS_DOC = "Linux socket(7) SO_PASSRIGHTS (since 6.16): when disabled, SCM_RIGHTS to the socket fails with EPERM"


def _passrights(sock: socket.socket, value: int | None = None) -> int:
    option = lookup("SO_PASSRIGHTS", socket)
    if value is not None:
        sock.setsockopt(socket.SOL_SOCKET, option, value)
    return sock.getsockopt(socket.SOL_SOCKET, option)


def _refused(sender: socket.socket, receiver: socket.socket, observe, name: str) -> None:
    """Descriptors sent to the receiver are refused with EPERM, released at once, and leave nothing queued;
    data alone still passes."""
    with InFlightMarker() as marker:
        with pytest.raises(OSError) as refused:
            rights.send_fds(sender, [marker.w], b"x")
        observe(name, errno_name(refused.value))
        marker.drop_local()
        assert marker.released(), "the refused descriptor is still referenced"
    assert refused.value.errno == errno.EPERM, f"refused with {errno_name(refused.value)}, not EPERM"
    assert nothing_queued(receiver), "a refused message was queued"
    sender.send(b"plain")
    assert receiver.recv(16) == b"plain", "data without descriptors no longer passes"


@pytest.mark.refs(PASSRIGHTS, PASSRIGHTS_DOC)
def test_so_passrights_off_refuses_descriptors_with_eperm(pair, observe):
    require("so_passrights")
    a, b = pair
    assert _passrights(b) == 1, "SO_PASSRIGHTS is not on by default"
    assert _passrights(b, 0) == 0
    _refused(a, b, observe, "passrights_off_errno")
    assert _passrights(b, 1) == 1
    _send_one(a, a.fileno())  # on again: descriptors pass as before
    _recv_one(b).close()


@pytest.mark.refs(PASSRIGHTS, PASSRIGHTS_DOC)
def test_so_passrights_is_the_receivers_choice_not_the_senders(pair):
    require("so_passrights")
    a, b = pair
    _passrights(a, 0)  # the sender refuses descriptors sent to *it*; what it sends is not affected
    _send_one(a, a.fileno())
    with _recv_one(b) as got:
        assert same_file(got.fds[0], a.fileno()), "the descriptor that arrived is another file"


@pytest.mark.parametrize("kind", ["stream", "seqpacket"])
@pytest.mark.refs(f"{PASSRIGHTS} (test_listener)", PASSRIGHTS_DOC)
def test_accepted_sockets_inherit_so_passrights_from_the_listener(socket_path, kind, observe):
    require("so_passrights")
    require(f"sock_{kind}")
    socktype = getattr(socket, f"SOCK_{kind.upper()}")
    listener = socket.socket(socket.AF_UNIX, socktype)
    client = socket.socket(socket.AF_UNIX, socktype)
    server = None
    try:
        listener.bind(socket_path)
        listener.listen(1)
        _passrights(listener, 0)
        client.connect(socket_path)
        server, _ = listener.accept()
        observe("passrights_of_accepted", _passrights(server))
        _refused(client, server, observe, "passrights_off_listener_errno")
    finally:
        for sock in (listener, client, server):
            if sock is not None:
                sock.close()
