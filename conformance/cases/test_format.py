"""Message-format edge cases of ancillary data: buffer sizing, truncation, odd cmsgs, and the stdlib helpers.

Every descriptor sent here is a copy of the write end of one marker pipe. After a receive the case knows
what became of each: delivered (in the control data), leaked (installed in the receiver's table but not
reported), closed (released by the kernel: the marker reaches EOF once the receiver closes what it got), or
held (none of these: still referenced somewhere). The receiver's descriptor table is compared before and
after, and anything leaked is closed by the case itself.

Anchors: RFC 3542 section 20 (CMSG_SPACE sizes a buffer, CMSG_LEN fills cmsg_len), CPython
Lib/test/test_socket.py SCMRightsTest and RecvmsgIntoSCMRightsStreamTest (the sizing and truncation cases run
through both recvmsg and recvmsg_into), FreeBSD tests/sys/kern/unix_passfd_test.c, POSIX.1-2024 XSH recvmsg()
(MSG_CTRUNC).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Callable

import pytest

from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.harness.deadlines import deadline
from conformance.outcomes import Unsupported

from ._support import RELEASE_WAIT, InFlightMarker, errno_name, nothing_queued
from .conftest import require

RFC3542 = "RFC 3542 section 20: CMSG_SPACE for buffers, CMSG_LEN for cmsg_len"
CPYTHON = "CPython Lib/test/test_socket.py SCMRightsTest"
CPYTHON_INTO = "CPython Lib/test/test_socket.py RecvmsgIntoSCMRightsStreamTest"
PASSFD = "FreeBSD tests/sys/kern/unix_passfd_test.c"
POSIX_CTRUNC = "POSIX.1-2024 XSH recvmsg(): MSG_CTRUNC 'Control data was truncated'"
POSIX_RIGHTS = "POSIX.1-2024 XBD <sys/socket.h>: SCM_RIGHTS"
INT = rights.INT_SIZE


def _len(n: int) -> int:
    return socket.CMSG_LEN(n)


def _space(n: int) -> int:
    return rights.cmsg_space(n)


@dataclass
class Delivery:
    sent: int
    delivered: int = 0
    ctrunc: bool = False
    leaked: int = 0
    invalid: int = 0  # delivered numbers that do not name the marker pipe
    released: bool = False
    cmsgs: int = 0

    @property
    def rest(self) -> str:
        """What became of the descriptors that were not delivered."""
        missing = self.sent - self.delivered
        if missing <= 0:
            return "none"
        if self.leaked == 0:
            return "closed" if self.released else "held"
        return "leaked" if self.leaked >= missing else "partial"

    def summary(self) -> str:
        return (f"{self.delivered} of {self.sent} delivered in {self.cmsgs} cmsg(s), MSG_CTRUNC "
                f"{'set' if self.ctrunc else 'clear'}, {self.leaked} leaked, rest {self.rest}")


Receive = Callable[[socket.socket], "tuple[list, int, int]"]  # -> (descriptors, msg_flags, cmsg count)

# The two receive calls of the socket module: recvmsg returns the data; recvmsg_into scatters it over buffers of
# the caller's (CPython RecvmsgIntoSCMRightsStreamTest runs the SCMRightsTest conditions through it). The scatter
# sizes make the one-byte payload land in the first buffer and leave the others untouched.
RECEIVE_CALLS = ["recvmsg", "recvmsg_into"]
SCATTER = (1, 7, 56)


def _recvmsg(sock: socket.socket, controllen: int | None):
    ancillary = () if controllen is None else (controllen,)
    data, ancdata, flags, _ = sock.recvmsg(sum(SCATTER), *ancillary)
    return data, ancdata, flags


def _recvmsg_into(sock: socket.socket, controllen: int | None):
    ancillary = () if controllen is None else (controllen,)
    buffers = [bytearray(size) for size in SCATTER]
    nbytes, ancdata, flags, _ = sock.recvmsg_into(buffers, *ancillary)
    return bytes(b"".join(buffers)[:nbytes]), ancdata, flags


def recvmsg_with(controllen: int | None, call: str = "recvmsg") -> Receive:
    """A receive with exactly this control buffer (None: no ancillary buffer at all), through recvmsg or
    recvmsg_into. The payload every sender here uses (b"x") must come back whole either way."""
    recv = {"recvmsg": _recvmsg, "recvmsg_into": _recvmsg_into}[call]

    def receive(sock: socket.socket):
        data, ancdata, flags = recv(sock, controllen)
        got = rights.parse(data, ancdata, flags)
        try:
            assert data == b"x", f"{call} returned the payload as {data!r}"
        except AssertionError:
            got.close()
            raise
        return got.take(), flags, len(got.groups)

    return receive


def deliver(a: socket.socket, b: socket.socket, groups: list, receive: Receive,
            send: Callable | None = None) -> Delivery:
    """Send len(group) marker copies per SCM_RIGHTS cmsg, receive once, and account for every copy."""
    with InFlightMarker() as marker:
        mark = fdlist.identity(marker.w)
        counts = [len(g) for g in groups]
        if send is None:
            rights.send_fds(a, None, groups=[[marker.w] * n for n in counts])
        else:
            send(a, [marker.w] * sum(counts))
        marker.drop_local()
        before = set(fdlist.open_fds())
        received, flags, cmsgs = receive(b)
        try:
            result = Delivery(sent=sum(counts), delivered=len(received), cmsgs=cmsgs,
                              ctrunc=bool(flags & socket.MSG_CTRUNC))
            result.invalid = sum(1 for fd in received if fdlist.identity(fd) != mark)
            leaked = [fd for fd, ident in fdlist.open_fds().items()
                      if fd not in before and fd not in received and ident == mark]
            result.leaked = len(leaked)
            for fd in leaked:
                os.close(fd)
        finally:
            for fd in received:
                os.close(fd)
        result.released = marker.released(RELEASE_WAIT if result.sent > result.delivered else 0.5)
        return result


def assert_sound(d: Delivery, buffer_given: bool = True) -> None:
    """What a receiver must be able to rely on whatever the buffer: valid descriptors, an honest flag, no leak.

    A receiver that passed no control buffer at all asked for no control data: whether MSG_CTRUNC tells it some
    was discarded is observed, not required (CPython's checkTruncatedHeader ignores the flag there too).
    """
    assert d.invalid == 0, f"{d.invalid} received numbers do not name the descriptor sent ({d.summary()})"
    if d.delivered < d.sent and buffer_given:
        assert d.ctrunc, f"descriptors went missing without MSG_CTRUNC ({d.summary()})"
    assert d.leaked == 0, f"descriptors installed in the receiver but not reported ({d.summary()})"
    assert d.released, f"descriptors neither delivered nor released ({d.summary()})"


def _observe(observe, what: str, d: Delivery) -> None:
    observe(f"{what}.delivered", d.delivered)
    observe(f"{what}.ctrunc", d.ctrunc)
    observe(f"{what}.rest", d.rest)


# ---- buffer sizing ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 8])
@pytest.mark.parametrize("call", RECEIVE_CALLS)
@pytest.mark.refs(RFC3542, f"{CPYTHON}.testFDPassCMSG_SPACE", f"{CPYTHON_INTO} (testFDPassCMSG_SPACE)", POSIX_RIGHTS)
def test_cmsg_space_buffer_receives_every_descriptor(pair, call, n):
    a, b = pair
    d = deliver(a, b, [[None] * n], recvmsg_with(_space(n * INT), call))
    assert_sound(d)
    assert d.delivered == n and not d.ctrunc, f"a CMSG_SPACE({n * INT}) buffer: {d.summary()}"


@pytest.mark.parametrize("n", [1, 2, 8])
@pytest.mark.parametrize("call", RECEIVE_CALLS)
@pytest.mark.refs(RFC3542, f"{CPYTHON}.testFDPassCMSG_LEN", f"{CPYTHON_INTO} (testFDPassCMSG_LEN)",
                  "CPython gh-111675 (CMSG_LEN buffer on FreeBSD)", POSIX_CTRUNC)
def test_cmsg_len_buffer_is_sound_whatever_arrives(pair, call, n, observe):
    # CMSG_LEN(4n) is smaller than CMSG_SPACE(4n) where alignment pads the data (FreeBSD/Linux LP64, odd n):
    # whether the last descriptor fits is the platform's choice; losing it silently or leaking it is not.
    a, b = pair
    d = deliver(a, b, [[None] * n], recvmsg_with(_len(n * INT), call))
    _observe(observe, "cmsg_len_buffer", d)
    assert_sound(d)


# ---- truncation --------------------------------------------------------------------------------------------------

# id: (descriptors per cmsg sent, control buffer size or None for no ancillary buffer, anchor)
TRUNCATION = {
    "no_buffer": ([1], lambda: None, f"{CPYTHON}.testCmsgTruncNoBufSize"),
    "zero": ([1], lambda: 0, f"{CPYTHON}.testCmsgTrunc0"),
    "one_byte": ([1], lambda: 1, f"{CPYTHON}.testCmsgTrunc1"),
    "two_ints": ([1], lambda: 2 * INT, f"{CPYTHON}.testCmsgTrunc2Int"),
    "len0_minus_1": ([1], lambda: _len(0) - 1, f"{CPYTHON}.testCmsgTruncLen0Minus1"),
    "len0": ([1], lambda: _len(0), f"{CPYTHON}.testCmsgTruncLen0; {PASSFD}: truncated_rights (one fd, CMSG_LEN(0))"),
    "len0_plus_1": ([2], lambda: _len(0) + 1, f"{CPYTHON}.testCmsgTruncLen0Plus1"),
    "len1": ([2], lambda: _len(INT), f"{CPYTHON}.testCmsgTruncLen1"),
    "len2_minus_1": ([2], lambda: _len(2 * INT) - 1, f"{CPYTHON}.testCmsgTruncLen2Minus1"),
    "two_cmsgs_in_space1": ([1, 1], lambda: _space(INT), f"{PASSFD}: truncated_rights (two cmsgs, CMSG_SPACE(4))"),
    "two_cmsgs_in_space0": ([1, 1], lambda: _space(0), f"{PASSFD}: truncated_rights (two cmsgs, CMSG_SPACE(0))"),
    "two_cmsgs_in_space1_space0": ([1, 1], lambda: _space(INT) + _space(0),
                                   f"{PASSFD}: truncated_rights (two cmsgs, CMSG_SPACE(4)+CMSG_SPACE(0))"),
    "three_fds_in_space1": ([3], lambda: _space(INT), f"{PASSFD}: truncated_rights (three fds, CMSG_SPACE(4))"),
}


@pytest.mark.parametrize("variant", list(TRUNCATION))
@pytest.mark.parametrize("call", RECEIVE_CALLS)
@pytest.mark.refs(POSIX_CTRUNC, CPYTHON, CPYTHON_INTO, PASSFD,
                  "XNU bsd/kern/uipc_syscalls.c copyout_control; CPython gh-80931")
def test_truncated_control_data_closes_what_does_not_fit(pair, call, variant, observe):
    a, b = pair
    counts, controllen, _anchor = TRUNCATION[variant]
    size = controllen()
    try:
        d = deliver(a, b, [[None] * n for n in counts], recvmsg_with(size, call))
    except OSError as e:
        if len(counts) > 1:  # macOS accepts one cmsg per sendmsg: the layout cannot be built
            observe("truncation.rest", f"unsent:{errno_name(e)}")
            raise Unsupported(
                f"sendmsg refuses {len(counts)} SCM_RIGHTS cmsgs in one message: {errno_name(e)}") from None
        raise
    _observe(observe, "truncation", d)
    assert_sound(d, buffer_given=bool(size))


# ---- odd control messages ----------------------------------------------------------------------------------------

def _send_refused_or_ok(a, b, observe, name: str, data: bytes, cmsgs: list):
    """sendmsg with these cmsgs; returns None if it was accepted, else records the errno and checks nothing queued."""
    try:
        a.sendmsg([data], cmsgs)
    except OSError as e:
        observe(name, f"refused:{errno_name(e)}")
        assert nothing_queued(b), "sendmsg failed yet queued a message"
        return e
    return None


def _empty_rights():
    return (socket.SOL_SOCKET, socket.SCM_RIGHTS, b"")


@pytest.mark.parametrize("where", ["alone", "before", "after"])
@pytest.mark.refs(f"{PASSFD}: empty_rights_message", f"{CPYTHON}.testFDPassEmpty", POSIX_RIGHTS)
def test_empty_rights_cmsg(pair, where, observe):
    a, b = pair
    with InFlightMarker() as marker:
        real = rights.rights_cmsg([marker.w])
        cmsgs = {"alone": [_empty_rights()], "before": [_empty_rights(), real], "after": [real, _empty_rights()]}
        if _send_refused_or_ok(a, b, observe, "empty_rights", b"x", cmsgs[where]) is not None:
            return
        observe("empty_rights", "accepted")
        with rights.recv_fds(b, 4) as got:
            assert got.data == b"x", f"the payload arrived as {got.data!r}"
            expected = 0 if where == "alone" else 1
            assert len(got.fds) == expected, f"{len(got.fds)} descriptors arrived, {expected} were sent"
            assert all(fdlist.identity(fd) == fdlist.identity(marker.w) for fd in got.fds), "a wrong descriptor"
        assert not got.ctrunc


# id: bytes of the SCM_RIGHTS payload relative to whole ints (CPython testFDPassPartialInt*): a descriptor number
# that is not open (-21845) cut short, so that rounding up would name a file that was never sent.
BAD_FD = -21845


@pytest.mark.parametrize("shape", ["partial_int_alone", "whole_then_partial", "partial_then_whole_cmsg"])
@pytest.mark.refs(f"{CPYTHON}.testFDPassPartialInt", f"{CPYTHON}.testFDPassPartialIntInMiddle", POSIX_RIGHTS)
def test_rights_data_not_a_multiple_of_int(pair, shape, observe):
    a, b = pair
    with InFlightMarker() as marker:
        partial = rights.rights_cmsg([BAD_FD])[2][:-1]
        whole_then_partial = rights.rights_cmsg([marker.w, BAD_FD])[2][:-1]
        cmsgs = {
            "partial_int_alone": [(socket.SOL_SOCKET, socket.SCM_RIGHTS, partial)],
            "whole_then_partial": [(socket.SOL_SOCKET, socket.SCM_RIGHTS, whole_then_partial)],
            "partial_then_whole_cmsg": [(socket.SOL_SOCKET, socket.SCM_RIGHTS, whole_then_partial),
                                        rights.rights_cmsg([marker.w])],
        }[shape]
        if _send_refused_or_ok(a, b, observe, "partial_int", b"x", cmsgs) is not None:
            return
        with rights.recv_fds(b, 4) as got:
            observe("partial_int", f"accepted:{len(got.fds)}")
            assert got.data == b"x"
            assert all(fdlist.identity(fd) == fdlist.identity(marker.w) for fd in got.fds), \
                "a descriptor that was never sent arrived (the partial int was rounded up)"


@pytest.mark.refs("POSIX.1-2024 XSH sendmsg(): EINVAL for invalid ancillary data", "Linux net/core/scm.c __scm_send",
                  "FreeBSD sys/kern/uipc_usrreq.c unp_internalize")
def test_unknown_cmsg_type_is_refused(pair, observe):
    a, b = pair
    unknown = (socket.SOL_SOCKET, 0x7FF1, rights.rights_cmsg([0])[2])
    refused = _send_refused_or_ok(a, b, observe, "unknown_type", b"x", [unknown])
    if refused is None:
        observe("unknown_type", "accepted")
        with rights.recv_fds(b, 4) as got:
            assert not got.fds
    assert refused is not None, "sendmsg accepted a SOL_SOCKET control message of an unknown type"


@pytest.mark.refs(POSIX_RIGHTS, "Linux net/core/scm.c __scm_send skips other levels",
                  "FreeBSD sys/kern/uipc_usrreq.c unp_internalize: EINVAL")
def test_rights_at_a_wrong_level_never_pass_a_descriptor(pair, observe):
    a, b = pair
    with InFlightMarker() as marker:
        wrong = (socket.IPPROTO_TCP, socket.SCM_RIGHTS, rights.rights_cmsg([marker.w])[2])
        if _send_refused_or_ok(a, b, observe, "wrong_level", b"x", [wrong]) is None:
            observe("wrong_level", "ignored")
            with rights.recv_fds(b, 4) as got:
                assert not got.fds, "an SCM_RIGHTS payload at level IPPROTO_TCP passed a descriptor"
                assert got.data == b"x"
        marker.drop_local()
        assert marker.released(), "the kernel kept a reference to the descriptor named at the wrong level"


def _tcp_loopback():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=deadline(5))
        server, _ = listener.accept()
    except OSError as e:
        raise Unsupported(f"no TCP loopback here: {errno_name(e)}") from None
    finally:
        listener.close()
    return client, server


@pytest.mark.refs(POSIX_RIGHTS + " (defined for AF_UNIX only)", "FreeBSD sys/netinet/tcp_usrreq.c tcp_usr_send: "
                  "EINVAL for control data", "Linux net/core/sock.c __sock_cmsg_send ignores SCM_RIGHTS")
def test_scm_rights_on_tcp_is_refused(observe):
    require("scm_rights")
    client, server = _tcp_loopback()
    try:
        with InFlightMarker() as marker:
            try:
                client.sendmsg([b"x"], [rights.rights_cmsg([marker.w])])
            except OSError as e:
                observe("tcp_rights", f"refused:{errno_name(e)}")
                return
            observe("tcp_rights", "ignored")
            server.settimeout(deadline(5))
            with rights.recv_fds(server, 4) as got:
                assert not got.fds, "a descriptor crossed a TCP connection"
            marker.drop_local()
            assert marker.released(), "TCP kept a reference to the descriptor it was asked to send"
            pytest.fail("sendmsg accepted SCM_RIGHTS on a TCP socket and dropped it: the sender believes it passed "
                        "a descriptor that nobody will receive")
    finally:
        client.close()
        server.close()


# ---- the standard library's send_fds / recv_fds -----------------------------------------------------------------

def _stdlib():
    if not (hasattr(socket, "send_fds") and hasattr(socket, "recv_fds")):
        raise Unsupported("socket.send_fds/recv_fds need Python 3.9+ with sendmsg and recvmsg")
    return socket.send_fds, socket.recv_fds


def stdlib_receive(maxfds: int) -> Receive:
    def receive(sock):
        _, recv_fds = _stdlib()
        _msg, fds, flags, _addr = recv_fds(sock, 64, maxfds)
        return list(fds), flags, 1 if fds else 0

    return receive


def stdlib_send(sock, fds) -> None:
    send_fds, _ = _stdlib()
    assert send_fds(sock, [b"x"], fds) == 1


@pytest.mark.parametrize("n", [1, 2, 3, 10])
@pytest.mark.refs("Python docs socket.recv_fds (3.9+)", "CPython gh-111675: recv_fds sizes with CMSG_LEN",
                  f"{CPYTHON}.testSendAndRecvFds")
def test_stdlib_recv_fds_receives_as_many_as_it_asks_for(pair, n, observe):
    a, b = pair
    _stdlib()
    d = deliver(a, b, [[None] * n], stdlib_receive(n), send=stdlib_send)
    _observe(observe, "stdlib_recv_fds", d)
    assert_sound(d)
    assert d.delivered == n, f"recv_fds(maxfds={n}) after send_fds of {n}: {d.summary()}"


@pytest.mark.refs("Python docs socket.recv_fds: returns msg_flags; it does not raise on MSG_CTRUNC",
                  "CPython gh-80931 (macOS leaks truncated descriptors)", POSIX_CTRUNC)
def test_stdlib_recv_fds_with_fewer_slots_than_descriptors(pair, observe):
    a, b = pair
    _stdlib()
    d = deliver(a, b, [[None] * 3], stdlib_receive(1), send=stdlib_send)
    _observe(observe, "stdlib_recv_fds_short", d)
    # recv_fds returns normally either way: only a caller that checks the flags learns of the loss.
    observe("stdlib_recv_fds_short.raises", False)
    assert_sound(d)


@pytest.mark.refs("Python docs socket.send_fds/recv_fds", f"{CPYTHON}.testSendAndRecvFds", POSIX_RIGHTS)
def test_stdlib_helpers_interoperate_with_plain_sendmsg(pair, observe):
    a, b = pair
    _stdlib()
    there = deliver(a, b, [[None] * 4], recvmsg_with(_space(4 * INT)), send=stdlib_send)
    back = deliver(a, b, [[None] * 4], stdlib_receive(4))
    for d in (there, back):
        assert_sound(d)
    assert there.delivered == 4, f"send_fds -> recvmsg(CMSG_SPACE): {there.summary()}"
    assert back.delivered == 4, f"sendmsg -> recv_fds(maxfds=4): {back.summary()}"

