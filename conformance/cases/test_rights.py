"""Descriptor passing with SCM_RIGHTS over AF_UNIX stream, datagram and seqpacket sockets.

Anchors: FreeBSD tests/sys/kern/unix_passfd_test.c (named per case), Linux
tools/testing/selftests/net/af_unix/scm_rights.c and scm_rights_denial_lsm.c, XNU tests/fd_send.c and
tests/uds-to-self.c, LTP testcases/kernel/syscalls/sendmsg (sendmsg01, sendmsg02), POSIX.1-2024 XBD
<sys/socket.h> (SCM_RIGHTS) and XSH sendmsg()/recvmsg(). Every received descriptor is closed on every path
(rights.Received owns them).
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import secrets
import select
import socket
import stat
import threading
import time

import pytest

from conformance import credentials
from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.harness.children import Child, run_in_child
from conformance.harness.deadlines import DEFAULT_DEADLINE, deadline
from conformance.harness.privileges import drop_privileges
from conformance.outcomes import HarnessError, Unsupported
from conformance.platforms import lookup, socket_paths

from ._graphs import assert_reclaimed
from ._support import (
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
XNU_FD_SEND = "XNU tests/fd_send.c"
XNU_SELF = "XNU tests/uds-to-self.c"
LTP_SENDMSG = "LTP testcases/kernel/syscalls/sendmsg"


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


POSIX_SEQPACKET = "POSIX.1-2024 socket(): SOCK_SEQPACKET preserves record boundaries"


@pytest.mark.refs(POSIX_SEQPACKET, "Linux unix(7): SOCK_SEQPACKET preserves message boundaries",
                  "CPython Lib/test/test_socket.py SeqpacketTest")
def test_a_seqpacket_socket_keeps_each_record_whole_and_apart():
    """A receive returns one record, however large its buffer; a buffer smaller than a record discards the rest of
    it (MSG_TRUNC); a descriptor arrives with the record it was sent with. The descriptor cases that run on every
    socket type do not see this: a stream receive stops at a message that carries descriptors too."""
    require("sock_seqpacket")
    a, b = unix_socketpair("seqpacket")
    with a, b, InFlightMarker() as marker:
        assert a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_SEQPACKET
        for record in (b"one", b"three", b"x"):
            assert a.send(record) == len(record)
        _send_one(a, marker.w, b"fd")
        assert b.recv(64) == b"one", "two records arrived as one"
        data, _, flags, _ = b.recvmsg(2)
        assert (data, bool(flags & socket.MSG_TRUNC)) == (b"th", True), (data, flags)
        assert b.recv(64) == b"x", "the rest of a truncated record was not discarded"
        with _recv_one(b) as got:
            assert got.data == b"fd" and same_file(got.fds[0], marker.w)


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
            assert_reclaimed(marker, inodes, socktype)
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


# ---- sockets in flight: a socket that travels inside its own pair, a socket whose peer is gone --------------------

def _writes_into(fd: int, marker: InFlightMarker) -> bool:
    """fd is the marker's write end (or a copy): what is written through it comes out of the read end. A pipe's two
    ends have one inode, so comparing identities could not tell them apart."""
    try:
        written = os.write(fd, b"m")
    except OSError:
        return False
    return written == 1 and os.read(marker.r, 1) == b"m"


def _recv_now(sock: socket.socket, n: int = 16) -> bytes:
    """What is queued on sock now (AF_UNIX queues a send in the peer before send returns); never blocks."""
    try:
        return sock.recv(n, socket.MSG_DONTWAIT)
    except BlockingIOError:
        raise AssertionError("nothing arrived") from None


def _as_socket(got: rights.Received) -> socket.socket:
    """The one received descriptor as a socket object, which then owns it."""
    (fd,) = got.take()
    try:
        return socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        raise


@pytest.mark.refs(f"{PASSFD}: bundle", POSIX_RIGHTS, "POSIX.1-2024 XSH close(): the description is freed when the "
                  "last descriptor referring to it is closed")
def test_a_socket_sent_over_itself_and_closed_arrives_working(pair):
    a, b = pair
    sent = fdlist.identity(a.fileno())
    _send_one(a, a.fileno())
    a.close()  # the only reference left is the one in flight, queued inside the socket's own pair
    with _as_socket(_recv_one(b)) as returned:
        assert fdlist.identity(returned.fileno()) == sent, "the socket that arrived is another one"
        assert returned.send(b"out") == 3
        assert _recv_now(b) == b"out", "the returned socket's data did not reach its peer"
        assert b.send(b"back") == 4
        assert _recv_now(returned) == b"back", "the peer's data did not reach the returned socket"


def _outcome(call, *args) -> str:
    """'eof', 'data' or the errno name of one non-blocking socket call."""
    try:
        result = call(*args)
    except OSError as e:
        return errno_name(e)
    return "eof" if result == b"" else "data"


@pytest.mark.refs(f"{XNU_FD_SEND}: send_sock", "POSIX.1-2024 XSH recv(): 0 when the peer has performed an orderly "
                  "shutdown; ECONNRESET", "POSIX.1-2024 XSH send(): EPIPE when connection-mode and no longer "
                  "connected; ECONNRESET")
def test_a_passed_socket_whose_peer_closed_arrives_disconnected(stream_pair, socktype, observe):
    require(f"sock_{socktype}")
    a, b = stream_pair
    end, peer = unix_socketpair(socktype)
    try:
        sent = fdlist.identity(end.fileno())
        _send_one(a, end.fileno())
    finally:
        end.close()  # both local ends closed before the receive: what is in flight has no peer any more
        peer.close()
    with _as_socket(_recv_one(b)) as received:
        assert fdlist.identity(received.fileno()) == sent, "the socket that arrived is another one"
        nosignal = getattr(socket, "MSG_NOSIGNAL", 0)
        read = _outcome(received.recv, 1, socket.MSG_DONTWAIT)
        write = _outcome(received.send, b"z", socket.MSG_DONTWAIT | nosignal)
    observe("peerless_socket_recv", read)
    observe("peerless_socket_send", write)
    if socktype == "dgram":  # no connection to end: any refusal, but no data and no hang
        assert read != "data", "a socket whose peer is gone received data"
        assert write not in ("eof", "data"), "a send to a peer that no longer exists succeeded"
    else:
        assert read in ("eof", "ECONNRESET"), f"reading a connection whose peer closed gave {read}"
        assert write in ("EPIPE", "ECONNRESET"), f"writing to a connection whose peer closed gave {write}"


# ---- a receiver killed around the receive ------------------------------------------------------------------------

def _await_byte(child: Child, fd: int) -> bytes:
    """The next byte the child writes to the pipe; what the child raised if it ended first."""
    ready, _, _ = select.select([fd], [], [], DEFAULT_DEADLINE)
    byte = os.read(fd, 1) if ready else b""
    if not byte:
        child.join()  # raises the child's own error, or that it hung or ended silently
        raise HarnessError(f"child {child.pid} ended without a word")
    return byte


def _receiver_to_be_killed(b: socket.socket, say: int, hold: int, moment: str) -> None:
    os.write(say, b"r")
    if moment == "before_the_receive":
        os.read(hold, 1)  # nothing is ever written there: it waits for SIGKILL
    with rights.recv_fds(b, 1) as got:
        os.write(say, b"g" if got.fds else b"n")
        os.read(hold, 1)


KILL_MOMENTS = ["before_the_receive", "during_the_receive", "after_the_receive"]


@pytest.mark.race("SIGKILL racing a blocked recvmsg")
@pytest.mark.parametrize("moment", KILL_MOMENTS)
@pytest.mark.refs(f"{XNU_FD_SEND}: send_kill", "POSIX.1-2024 XSH _Exit(): all of the file descriptors open in the "
                  "calling process shall be closed", POSIX_RIGHTS)
def test_a_receiver_killed_around_the_receive_leaks_nothing(pair, moment, observe):
    a, b = pair
    said, say = os.pipe()
    hold, held = os.pipe()
    try:
        with Child(_receiver_to_be_killed, b, say, hold, moment) as child:
            os.close(say)  # the child's copy is then the only one: its early end reads as EOF
            say = -1
            assert _await_byte(child, said) == b"r"
            with InFlightMarker() as marker:
                _send_one(a, marker.w)
                marker.drop_local()
                if moment == "after_the_receive":
                    assert _await_byte(child, said) == b"g", "the receiver got the message without its descriptor"
                child.kill()
                queued = not nothing_queued(b)
                if moment != "during_the_receive":  # there, which of the two happens is the race's to decide
                    observe("killed_receiver_message", "queued" if queued else "taken")
                if moment == "before_the_receive":
                    assert queued, "the message was lost when a process that had not received it was killed"
                if moment == "after_the_receive":
                    assert marker.released(), "the descriptor a killed process had received outlived it"
                a.close()
                b.close()
                assert marker.released(), "the descriptor was not released once the receiver died and both ends closed"
    finally:
        for fd in (said, say, hold, held):
            if fd >= 0:
                os.close(fd)


# ---- many senders and receivers at once --------------------------------------------------------------------------

STRESS_WORKERS = 4
STRESS_MESSAGES = 100


def _stress(kind: str, workers: int, messages: int) -> dict:
    """In a child: workers pairs, each with a sender thread passing dups of one pipe end and a receiver thread."""
    with InFlightMarker() as marker:
        mark = fdlist.identity(marker.w)
        pairs = [unix_socketpair(kind) for _ in range(workers)]
        before = set(fdlist.open_fds())
        tallies, errors = [], []

        def send(sock: socket.socket) -> None:
            for _ in range(messages):
                dup = os.dup(marker.w)
                try:
                    rights.send_fds(sock, [dup])
                finally:
                    os.close(dup)

        def receive(sock: socket.socket) -> None:
            received = wrong = truncated = 0
            for _ in range(messages):
                with rights.recv_fds(sock, 1, bufsize=1) as got:  # one message's byte: one message's descriptor
                    received += len(got.fds)
                    wrong += sum(1 for fd in got.fds if fdlist.identity(fd) != mark)
                    truncated += got.ctrunc
            tallies.append((received, wrong, truncated))

        def guarded(work, sock: socket.socket) -> None:
            try:
                work(sock)
            except BaseException as e:  # reported to the parent; the other threads end by their timeouts
                errors.append(f"{type(e).__name__}: {e}")

        threads = []
        for a, b in pairs:
            for sock in (a, b):
                sock.settimeout(deadline(5))
            threads += [threading.Thread(target=guarded, args=(send, a)),
                        threading.Thread(target=guarded, args=(receive, b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for a, b in pairs:
            a.close()
            b.close()
        left = len(set(fdlist.open_fds()) - before)
        marker.drop_local()
        return {"received": sum(t[0] for t in tallies), "wrong": sum(t[1] for t in tallies),
                "truncated": sum(t[2] for t in tallies), "errors": errors, "left_open": left,
                "released": marker.released()}


@pytest.mark.race("concurrent senders and receivers of descriptors")
@pytest.mark.refs(f"{XNU_FD_SEND}: send_stress", POSIX_RIGHTS)
def test_concurrent_senders_and_receivers_account_for_every_descriptor(socktype):
    require("scm_rights")
    require(f"sock_{socktype}")
    result = run_in_child(_stress, socktype, STRESS_WORKERS, STRESS_MESSAGES, timeout=deadline(30))
    assert not result["errors"], f"workers failed: {result['errors']}"
    sent = STRESS_WORKERS * STRESS_MESSAGES
    assert result["received"] == sent, f"{result['received']} of {sent} descriptors arrived"
    assert result["wrong"] == 0, f"{result['wrong']} received descriptors name another file"
    assert result["truncated"] == 0, f"{result['truncated']} receives were truncated (MSG_CTRUNC)"
    assert result["left_open"] == 0, f"{result['left_open']} descriptors left open in the receiving process"
    assert result["released"], "a descriptor passed under load was never released"


# ---- named datagram sockets: talking to oneself, sendto a bound name -----------------------------------------------

def _whose(value, own: int) -> str:
    return "self" if value == own else str(value)


def _peer_credentials(sock: socket.socket) -> str:
    found = credentials.peer_credentials(sock)
    return f"pid {_whose(found.pid, os.getpid())}, uid {_whose(found.uid, os.geteuid())}"


def _peer_pid(sock: socket.socket) -> str:
    return _whose(credentials.peer_pid(sock), os.getpid())


def _peer_pidfd(sock: socket.socket) -> str:
    fd = credentials.peer_pidfd(sock)
    try:
        return f"pidfd of {_whose(credentials.pidfd_pid(fd), os.getpid())}"
    finally:
        os.close(fd)


PEER_QUERIES = {"peer_credentials": _peer_credentials, "peer_pid": _peer_pid, "peer_pidfd": _peer_pidfd}


def _peer_answers(sock: socket.socket) -> dict:
    """What each connect-time peer query this platform has answers (a value or the errno); absent ones are left out."""
    answers = {}
    for name, ask in PEER_QUERIES.items():
        try:
            answers[name] = ask(sock)
        except credentials.CredentialsUnavailable:
            continue
        except OSError as e:
            answers[name] = f"refused:{errno_name(e)}"
    return answers


@pytest.mark.refs(f"{XNU_SELF}: uds_self_connection", "POSIX.1-2024 XSH connect(): a connectionless socket's peer "
                  "address is where datagrams go", POSIX_RIGHTS)
def test_a_datagram_socket_bound_and_connected_to_itself_talks_to_itself(socket_path, observe):
    require("scm_rights")
    require("sock_dgram")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.settimeout(deadline(5))
        sock.bind(socket_path)
        sock.connect(socket_path)
        assert sock.getpeername() == sock.getsockname(), "the socket is connected to another name than its own"
        with InFlightMarker() as marker:
            _send_one(sock, marker.w, b"self")
            with _recv_one(sock) as got:
                assert got.data == b"self", f"the message to itself came back as {got.data!r}"
                assert _writes_into(got.fds[0], marker), "the descriptor sent to itself came back as another file"
        # The anchor's point: asking who the peer is, when the peer is the socket itself, must not bring the
        # system down; what each query answers is recorded.
        for name, answer in _peer_answers(sock).items():
            observe(f"self_connected_{name}", answer)
        sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.close()


def _bind_named(sock: socket.socket, address: str, socket_path: str):
    """Bind sock to a pathname or to an abstract name (a first byte of NUL); the name bound."""
    if address == "pathname":
        sock.bind(socket_path)
        return socket_path
    require("abstract_unix_addresses")
    name = b"\0conformance-" + secrets.token_hex(8).encode()
    sock.bind(name)
    return name


@pytest.mark.parametrize("address", ["pathname", "abstract"])
@pytest.mark.refs(f"{LTP_SENDMSG}/sendmsg01.c: rights passing", "POSIX.1-2024 XSH sendmsg(): msg_name gives the "
                  "destination of a connectionless socket", "Linux unix(7): abstract socket addresses", POSIX_RIGHTS)
def test_an_unconnected_datagram_socket_passes_descriptors_to_a_named_socket(socket_path, address):
    require("scm_rights")
    require("sock_dgram")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        receiver.settimeout(deadline(5))
        name = _bind_named(receiver, address, socket_path)
        with InFlightMarker() as marker:
            assert sender.sendmsg([b"x"], [rights.rights_cmsg([marker.w])], 0, name) == 1
            with _recv_one(receiver) as got:
                assert got.data == b"x", f"the datagram arrived as {got.data!r}"
                assert _writes_into(got.fds[0], marker), "the descriptor that arrived is not the one sent"
    finally:
        receiver.close()
        sender.close()


# ---- datagram sends racing the receiver's close and rebind --------------------------------------------------------

RACING_PAIRS = 2
RACE_SECONDS = 0.1
# What a datagram sendmsg to a name whose socket comes and goes may answer (POSIX.1-2024 XSH sendmsg() ERRORS:
# ENOENT no such file, EAGAIN queue full, ENOBUFS, ECONNRESET; Linux unix(7)/FreeBSD unix(4): ECONNREFUSED when
# the file is there but no socket is bound to it).
RACING_SEND_ERRNOS = {"ECONNREFUSED", "ENOENT", "EAGAIN", "ENOBUFS", "ECONNRESET"}


def _closing(fds: list, work, *args):
    """In a child: close the inherited descriptors that are not this child's to hold, then work."""
    for fd in fds:
        os.close(fd)
    return work(*args)


def _rebinding_receiver(path: str, ticks: int) -> int:
    """Bind a fresh socket to path, wait for the sender's ticks, close it; again, until the sender is done."""
    rounds = 0
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            sock.bind(path)
            if not os.read(ticks, 4096):  # every tick so far: the sender is sending to this socket now
                return rounds
        finally:
            sock.close()  # with whatever the sender queued, descriptors included
        rounds += 1


def _racing_sender(path: str, ticks: int, passed: int, seconds: float) -> dict:
    """Until the time is up: a fresh socket ticks the receiver and sends it a descriptor; what each send answered."""
    os.set_blocking(ticks, False)
    seen: dict = {}
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                try:
                    os.write(ticks, b"t")
                except BlockingIOError:
                    pass  # the receiver is far behind: it has ticks enough
                try:
                    sock.sendmsg([b"123456789"], [rights.rights_cmsg([passed])], socket.MSG_DONTWAIT, path)
                    outcome = "ok"
                except OSError as e:
                    outcome = errno_name(e)
            finally:
                sock.close()
            seen[outcome] = seen.get(outcome, 0) + 1
    finally:
        os.close(ticks)
    return seen


@pytest.mark.race("datagram sends racing the receiver's close and rebind")
@pytest.mark.refs(f"{LTP_SENDMSG}/sendmsg02.c", "Linux commit ded34e0fe8fe (unix: fix a race condition in "
                  "unix_release())", "POSIX.1-2024 XSH sendmsg(): ERRORS")
def test_datagram_sends_racing_the_receivers_close_and_rebind(socket_path):
    require("scm_rights")
    require("sock_dgram")
    paths = [f"{socket_path}{i}" for i in range(RACING_PAIRS)]
    if not all(socket_paths.fits(path) for path in paths):
        raise Unsupported(f"the temporary directory's path is too long for a socket name: {paths[-1]}")
    with InFlightMarker() as marker:
        children = []
        try:
            for path in paths:
                ticks_r, ticks_w = os.pipe()
                try:
                    children.append((Child(_closing, [ticks_w, marker.w], _rebinding_receiver, path, ticks_r), False))
                    children.append((Child(_closing, [ticks_r], _racing_sender, path, ticks_w, marker.w,
                                           RACE_SECONDS), True))
                finally:
                    os.close(ticks_r)
                    os.close(ticks_w)
            marker.drop_local()
            results = [(child.join(), sender) for child, sender in children]
        finally:
            for child, _ in children:
                child.kill()
        seen: dict = {}
        for result, sender in results:
            if sender:
                for outcome, count in result.items():
                    seen[outcome] = seen.get(outcome, 0) + count
        # Which errnos a run meets is the race's to decide, so it is no observation (it would differ between runs).
        unexpected = sorted(set(seen) - RACING_SEND_ERRNOS - {"ok"})
        assert not unexpected, f"sends racing the receiver's close answered {unexpected} (all seen: {seen})"
        assert marker.released(), "descriptors sent to receivers that closed were never released"


# ---- a payload that fills the send buffer ------------------------------------------------------------------------

@pytest.mark.refs(f"{PASSFD}: rights_creds_payload (here without credentials)", "POSIX.1-2024 XSH send(): with "
                  "O_NONBLOCK, a send that does not fit may transfer part of the data", POSIX_RIGHTS)
def test_a_descriptor_with_a_payload_that_fills_the_send_buffer(stream_pair, observe):
    a, b = stream_pair
    a.setblocking(False)
    size = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    payload = (bytes(range(251)) * (size // 251 + 1))[:size]  # a period that no buffer size divides
    with InFlightMarker() as marker:
        sent = rights.send_fds(a, [marker.w], payload)
        marker.drop_local()
        observe("payload_at_buffer_limit", "whole" if sent == size else "short write")
        assert 0 < sent <= size, f"sendmsg of {size} bytes returned {sent}"
        with rights.recv_fds(b, 1, bufsize=sent) as first:
            assert first.data, "the first receive returned no data"
            assert len(first.fds) == 1 and not first.ctrunc, \
                f"the descriptor did not arrive with the first bytes ({len(first.fds)} fds, flags {first.flags:#x})"
            assert _writes_into(first.fds[0], marker), "the descriptor that arrived is not the one sent"
            data = first.data
        while len(data) < sent:
            try:
                more = rights.recv_fds(b, 1, bufsize=sent - len(data), flags=socket.MSG_DONTWAIT)
            except BlockingIOError:
                raise AssertionError(f"{len(data)} of the {sent} bytes sent arrived") from None
            with more:
                assert not more.fds, "a second descriptor arrived"
                data += more.data
        assert data == payload[:sent], "the bytes that arrived differ from those sent"
        assert nothing_queued(b), "more arrived than sendmsg said it sent"
        assert marker.released(), "the received descriptor was closed, yet the file stayed referenced"


# ---- a receiver that reports refused descriptors in place (SO_RIGHTS_NOTRUNC) -------------------------------------

DENIAL = "Linux tools/testing/selftests/net/af_unix/scm_rights_denial_lsm.c"
NO_DENYING_MODULE = "needs a security module that denies passing a file"


def _deny_passing(fd: int) -> None:
    """Have a security module refuse to let this file be received. The anchor attaches a BPF LSM program that does
    it; the suite loads no security module, so the cases that need one are unsupported wherever they run (the rest
    of each is written in full)."""
    raise Unsupported(NO_DENYING_MODULE)


def _secret(i: int) -> bytes:
    return f"secret {i}".encode()


def _secret_files(workdir, n: int = 2) -> list:
    return [data_file(workdir, f"secret{i}", _secret(i), os.O_RDONLY) for i in range(n)]


NOTRUNC_DENIED = {"all_allowed": (), "first_denied": (0,), "all_denied": (0, 1)}


@pytest.mark.parametrize("variant", list(NOTRUNC_DENIED))
@pytest.mark.refs(f"{DENIAL}: all_allowed, first_denied, all_denied")
def test_so_rights_notrunc_keeps_every_slot_and_clears_msg_ctrunc(pair, workdir, variant):
    a, b = pair
    denied = NOTRUNC_DENIED[variant]
    files = _secret_files(workdir)
    try:
        for i in denied:
            _deny_passing(files[i])
        require("so_rights_notrunc")
        b.setsockopt(socket.SOL_SOCKET, lookup("SO_RIGHTS_NOTRUNC", socket), 1)
        assert rights.send_fds(a, files) == 1
        with rights.recv_fds(b, len(files)) as got:  # a denied slot holds -EPERM: closing it is a harmless EBADF
            slots = got.fds
            assert len(slots) == len(files), f"{len(slots)} slots for {len(files)} descriptors sent"
            assert not got.ctrunc, "MSG_CTRUNC set although SO_RIGHTS_NOTRUNC is on"
            for i, slot in enumerate(slots):
                if i in denied:
                    assert slot == -errno.EPERM, f"slot {i} of a denied file holds {slot}, not -EPERM"
                else:
                    assert os.pread(slot, 16, 0) == _secret(i), f"slot {i} does not read its own file"
    finally:
        for fd in files:
            os.close(fd)


@pytest.mark.refs(f"{DENIAL}: denied_without_notrunc", "POSIX.1-2024 XSH recvmsg(): MSG_CTRUNC")
def test_a_denied_descriptor_cuts_the_rights_short_with_msg_ctrunc(pair, workdir):
    a, b = pair
    files = _secret_files(workdir)
    try:
        _deny_passing(files[1])
        assert rights.send_fds(a, files) == 1
        with rights.recv_fds(b, len(files)) as got:
            assert len(got.fds) == 1, f"{len(got.fds)} descriptors arrived; only the first was allowed"
            assert got.ctrunc, "the denied descriptor went missing without MSG_CTRUNC"
            assert os.pread(got.fds[0], 16, 0) == _secret(0), "the allowed descriptor does not read its own file"
    finally:
        for fd in files:
            os.close(fd)
