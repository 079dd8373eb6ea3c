"""The APUE descriptor-passing protocol over STREAMS pipes (illumos, Solaris): I_SENDFD, I_RECVFD and getmsg.

The seed's "Passing File Descriptors over STREAMS-Based Pipes" (APUE 3e section 17.4): send_fd writes the two
protocol bytes and then ioctl(I_SENDFD); recv_fd reads messages with getmsg until one holds the NUL, and takes the
descriptor with ioctl(I_RECVFD), which also names the sender's effective uid and gid. The implementation under test
is conformance.streams; malformed sequences are made with its raw calls (write, i_sendfd). The same protocol cases as
test_protocol.py has for UNIX domain sockets, where they make sense on a STREAMS pipe, then what only STREAMS has.

A pipe(2) on illumos starts in fifofs's fast mode and becomes a STREAMS pipe at its first STREAMS operation
(fifovnops.c fifo_fastioctl, getmsg.c msgio); writes made before that reach the stream head as one message
(fifosubr.c fifo_fastturnoff). The pipes of these cases are turned into STREAMS pipes first, so that every write is a
message of its own; test_two_writes_to_a_fresh_pipe_* records what a fresh pipe does.
"""

from __future__ import annotations

import errno
import os

import pytest

from conformance import apue, streams
from conformance.harness.children import Child
from conformance.harness.deadlines import deadline
from conformance.harness.privileges import NOBODY, drop_privileges
from conformance.outcomes import Unsupported

from ._protocol import STATUS_RULE_IDS, STATUS_RULES, TEXT_SIZES, Collect, check_same_open_file, sample_text
from ._support import InFlightMarker, data_file, errno_name, same_file
from .conftest import require

SEED = "APUE 3e 17.4 (seed 000)"
SEED_SEND_ERR = f"{SEED}: Figure 'The send_err function'"
SEED_STREAMS = f"{SEED}: Figures 'send_fd/recv_fd for STREAMS pipes'"
STREAMIO = "illumos streamio(4I) (Solaris streamio(7I)): I_SENDFD, I_RECVFD"
GETMSG = "illumos getmsg(2)"
SRC_STREAMIO = "illumos usr/src/uts/common/os/streamio.c"
SRC_FIFO = "illumos usr/src/uts/common/fs/fifofs/fifosubr.c, fifovnops.c"
MAXLINE = apue.MAXLINE


class StreamsPipe:
    """Both ends of a pipe(2): each is a stream open for reading and writing (illumos pipe(2))."""

    def __init__(self) -> None:
        self.a, self.b = os.pipe()

    def close(self, end: str) -> None:
        fd = getattr(self, end)
        if fd >= 0:
            setattr(self, end, -1)
            os.close(fd)


def _leave_fast_mode(fd: int) -> None:
    """Make the pipe a STREAMS pipe now: getmsg does that first (msgio calls fifo_vfastoff), then, non-blocking on an
    empty queue, fails with EAGAIN (getmsg(2))."""
    os.set_blocking(fd, False)
    try:
        streams.getmsg(fd, 1)
    except BlockingIOError:
        pass
    else:
        raise AssertionError("getmsg on a new, empty pipe returned a message")
    finally:
        os.set_blocking(fd, True)


@pytest.fixture
def spipe():
    """A pipe in STREAMS mode; the case sends on `a` and receives on `b`."""
    require("streams_sendfd")
    pipe = StreamsPipe()
    try:
        _leave_fast_mode(pipe.b)
        yield pipe
    finally:
        pipe.close("a")
        pipe.close("b")


def _nothing_queued(fd: int) -> bool:
    return streams.i_nread(fd) == 0


def _queue(spipe: StreamsPipe, marker: InFlightMarker) -> None:
    """Queue the marker's write end at the receiving end's stream head, keeping no copy of it here."""
    streams.i_sendfd(spipe.a, marker.w)
    marker.drop_local()


# ---- the descriptor and every status ---------------------------------------------------------------------------

@pytest.mark.refs(SEED_STREAMS, STREAMIO)
def test_send_fd_delivers_the_same_open_file(spipe, workdir):
    fd = data_file(workdir)
    try:
        streams.send_fd(spipe.a, fd)
        check_same_open_file(fd, streams.recv_fd(spipe.b, Collect()))
    finally:
        os.close(fd)
    assert _nothing_queued(spipe.b), "messages left over after one protocol message"


@pytest.mark.refs(SEED_SEND_ERR, SEED_STREAMS, "seed: 'the value of status must be in the range 1 through 255'")
def test_every_error_status_round_trips_with_its_text(spipe, observe):
    wrong = []
    for status in range(1, 256):
        text = f"error {status}: ".encode() + sample_text(status % 17, status)
        streams.send_err(spipe.a, -status, text)
        collect = Collect()
        result = streams.recv_fd(spipe.b, collect)
        if result != -status or collect.text != text:
            wrong.append(f"{status}: recv_fd returned {result}, text {collect.text[:24]!r}")
    observe("error_statuses_checked", 255)
    observe("error_statuses_wrong", len(wrong))
    assert not wrong, f"{len(wrong)} of 255 statuses did not round-trip: " + "; ".join(wrong[:8])
    assert _nothing_queued(spipe.b)


@pytest.mark.parametrize(("call", "argument", "status"), STATUS_RULES, ids=STATUS_RULE_IDS)
@pytest.mark.refs(SEED_STREAMS, SEED_SEND_ERR, "seed send_fd: 'if (buf[1] == 0) buf[1] = 1; /* -256, etc. */'")
def test_status_byte_on_the_wire(spipe, call, argument, status):
    if call == "send_fd":
        streams.send_fd(spipe.a, argument)
        expected_wire = bytes([0, status])
    else:
        streams.send_err(spipe.a, argument, b"why")
        expected_wire = b"why" + bytes([0, status])
    wire = b""
    while len(wire) < len(expected_wire):
        data, _ = streams.getmsg(spipe.b, 64)  # a passed descriptor here would fail with EBADMSG
        assert data, "the sender's messages ended early"
        wire += data
    assert wire == expected_wire, f"{call}({argument}) put {wire!r} on the wire, the seed puts {expected_wire!r}"
    assert _nothing_queued(spipe.b), "a status message came with a descriptor or more data"


# ---- error text ------------------------------------------------------------------------------------------------

def _send_err_later(fd: int, text: bytes, status: int) -> None:
    streams.send_err(fd, -status, text)


@pytest.mark.parametrize("size", list(TEXT_SIZES), ids=list(TEXT_SIZES))
@pytest.mark.refs(SEED_SEND_ERR, SEED_STREAMS, GETMSG, "seed recv_fd: 'Any characters read up to this point are "
                  "passed to the caller's userfunc'")
def test_error_text_arrives_whole_and_in_order(spipe, size):
    text = sample_text(TEXT_SIZES[size])
    collect = Collect()
    if len(text) <= 2 * MAXLINE:  # below the pipe's high-water mark (fifonode.h FIFOHIWAT, 16 KiB): queued whole
        streams.send_err(spipe.a, -9, text)
        result = streams.recv_fd(spipe.b, collect)
    else:
        with Child(_send_err_later, spipe.a, text, 9) as child:  # more than the pipe holds: the sender must block
            spipe.close("a")  # so that a sender that dies is a hangup (connection closed), not a hang
            try:
                result = streams.recv_fd(spipe.b, collect)
            except apue.ConnectionClosed:
                child.join(deadline(1.0))  # the sender's own exception says why nothing more came
                raise
            child.join()
    assert result == -9, f"recv_fd returned {result}, not -9"
    collect.check_whole(text)
    assert _nothing_queued(spipe.b)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.refs(SEED_SEND_ERR, "seed recv_fd: text ends at the first NUL byte")
def test_text_containing_nul_is_refused_by_the_sender(spipe, where):
    text = {"start": b"\0abc", "middle": b"ab\0cd", "end": b"abc\0"}[where]
    with pytest.raises(ValueError, match="NUL"):
        streams.send_err(spipe.a, -5, text)
    assert _nothing_queued(spipe.b), "a refused message was partly sent"


# ---- malformed messages built by hand ---------------------------------------------------------------------------

@pytest.mark.parametrize("with_fd", [False, True], ids=["no_fd", "with_fd"])
@pytest.mark.refs(SEED_STREAMS, "seed recv_fd: 'if (ptr != &buf[nread-1]) err_dump(\"message format error\")'",
                  f"{GETMSG}: EBADMSG", SRC_STREAMIO)
def test_bytes_after_the_status_byte_are_a_format_error(spipe, with_fd):
    with InFlightMarker() as marker:
        if with_fd:  # queued where data belongs: the receiver takes it only to close it
            _queue(spipe, marker)
        streams.write(spipe.a, b"ab\0\x05cd")
        with pytest.raises(apue.MessageFormatError, match="message format error"):
            streams.recv_fd(spipe.b, Collect())
        if with_fd:
            assert marker.released(), "the descriptor queued ahead of a malformed message was not closed"


@pytest.mark.refs(SEED_STREAMS, "seed recv_fd: the NUL must be next to last")
def test_a_message_ending_in_nul_is_a_format_error(spipe):
    streams.write(spipe.a, b"text\0")
    with pytest.raises(apue.MessageFormatError, match="message format error"):
        streams.recv_fd(spipe.b, Collect())


@pytest.mark.parametrize("after", ["data", "hangup"])
@pytest.mark.refs(SEED_STREAMS, "seed recv_fd: 'if (ioctl(fd, I_RECVFD, &recvfd) < 0) return(-1)'",
                  f"{STREAMIO}: EBADMSG, ENXIO", SRC_STREAMIO)
def test_status_zero_without_a_descriptor_is_an_error(spipe, after):
    streams.write(spipe.a, b"\0\0")
    if after == "data":
        streams.write(spipe.a, b"xyz")
    else:
        spipe.close("a")
    with pytest.raises(apue.MissingDescriptor, match="status = 0 but no fd"):
        streams.recv_fd(spipe.b, Collect())
    if after == "data":
        assert streams.getmsg(spipe.b, 16) == (b"xyz", 0), "I_RECVFD took or dropped the data at the head"


@pytest.mark.refs(SEED_STREAMS, "seed recv_fd: a non-zero status means there is no descriptor to receive",
                  f"{GETMSG}: EBADMSG", SRC_STREAMIO)
def test_a_descriptor_queued_after_an_error_status_is_closed_by_the_next_receive(spipe):
    with InFlightMarker() as marker:
        streams.write(spipe.a, b"\0\x07")
        _queue(spipe, marker)
        assert streams.recv_fd(spipe.b, Collect()) == -7
        assert marker.kept_for(0.0), "recv_fd read past the error status"
        streams.send_fd(spipe.a, -8)
        reply = streams.receive(spipe.b, Collect())
        assert (reply.status, reply.closed_fds) == (8, 1), f"the next receive: {reply}"
        assert marker.released(), "the descriptor queued after status 7 is still open in the receiver"


@pytest.mark.parametrize("final", ["error_status", "descriptor"])
@pytest.mark.refs(SEED_STREAMS, "seed recv_fd: text before the NUL is error text only", SRC_STREAMIO)
def test_a_descriptor_sent_with_error_text_is_closed(spipe, workdir, final):
    fd = data_file(workdir)
    try:
        with InFlightMarker() as marker:
            streams.write(spipe.a, b"not yet")
            _queue(spipe, marker)
            streams.send_fd(spipe.a, -3 if final == "error_status" else fd)
            collect = Collect()
            with streams.receive(spipe.b, collect) as reply:
                if final == "error_status":
                    assert (reply.status, reply.fd) == (3, None)
                else:
                    assert reply.status == 0 and same_file(reply.fd, fd), "the descriptor returned is not the last one"
                assert reply.closed_fds == 1, f"{reply.closed_fds} descriptors closed on the way, not 1"
            assert collect.text == b"not yet"
            assert marker.released(), "a descriptor sent with plain text stayed open in the receiver"
    finally:
        os.close(fd)


@pytest.mark.parametrize("sent", [b"", b"partial text"], ids=["nothing", "text"])
@pytest.mark.refs(SEED_STREAMS, "seed recv_fd: 'if (nread == 0) { err_ret(\"connection closed by server\"); ...'",
                  f"{GETMSG}: after a hangup, len 0")
def test_peer_closing_mid_message_is_connection_closed(spipe, sent):
    if sent:
        streams.write(spipe.a, sent)
    spipe.close("a")
    collect = Collect()
    with pytest.raises(apue.ConnectionClosed, match="connection closed by server"):
        streams.recv_fd(spipe.b, collect)
    assert collect.text == sent, "text sent before the close was not delivered"


@pytest.mark.refs(SEED_STREAMS, "Python API: PeerError carries the status and the whole text")
def test_receive_fd_raises_peer_error_with_status_and_text(spipe):
    streams.send_err(spipe.a, -77, "no such file")
    with pytest.raises(apue.PeerError) as e:
        streams.receive_fd(spipe.b)
    assert (e.value.status, e.value.text) == (77, b"no such file")


@pytest.mark.refs(SEED_STREAMS, "seed recv_fd: 'if ((*userfunc)(STDERR_FILENO, buf, nread) != nread) return(-1)'")
def test_a_failing_userfunc_is_an_error_and_takes_no_descriptor(spipe):
    with InFlightMarker() as marker:
        streams.write(spipe.a, b"text\0\0")
        _queue(spipe, marker)
        with pytest.raises(apue.UserfuncFailed):
            streams.recv_fd(spipe.b, lambda _fd, data: len(data) - 1)
        assert streams.i_nread(spipe.b) == 1, "the descriptor did not stay queued after the userfunc failed"
        spipe.close("b")
        assert marker.released(), "the descriptor queued at the closed end was not released"


# ---- the sender's identity ----------------------------------------------------------------------------------------

@pytest.mark.refs(SEED_STREAMS, f"{STREAMIO}: 'uid and gid are the user id and group id ... of the sending stream'")
def test_recv_ufd_returns_the_descriptor_and_the_senders_uid(spipe, workdir):
    fd = data_file(workdir)
    try:
        streams.send_fd(spipe.a, fd)
        received, uid = streams.recv_ufd(spipe.b, Collect())
        check_same_open_file(fd, received)
        assert uid == os.geteuid(), f"recv_ufd reported uid {uid}, the sender's is {os.geteuid()}"
    finally:
        os.close(fd)


def _send_fd_as(fd: int, fd_to_send: int, how: str) -> tuple:
    if how == "dropped":
        drop_privileges(NOBODY)  # as root; otherwise the sender keeps this process's ids
    else:
        os.setegid(NOBODY)  # the real ids stay root's
        os.seteuid(NOBODY)
    streams.send_fd(fd, fd_to_send)
    return os.geteuid(), os.getegid(), os.getuid(), os.getgid()


@pytest.mark.parametrize("how", ["dropped", "effective_only"])
@pytest.mark.refs(f"{SEED}: struct strrecvfd 'uid_t uid; /* effective user ID of sender */'", STREAMIO,
                  f"{SRC_STREAMIO} do_sendfp: srf->uid = crgetuid(), srf->gid = crgetgid() (cr_uid, cr_gid)")
def test_strrecvfd_names_the_senders_effective_uid_and_gid(spipe, workdir, observe, how):
    if how == "effective_only" and os.geteuid() != 0:
        raise Unsupported("needs root to give the sender real and effective ids that differ")
    fd = data_file(workdir)
    try:
        with Child(_send_fd_as, spipe.a, fd, how) as child:
            # Joined first: the message fits in the pipe, and a sender that failed must not leave the receive blocked.
            euid, egid, ruid, rgid = child.join()
        with streams.receive(spipe.b, Collect()) as reply:
            assert reply.status == 0 and same_file(fd, reply.fd), "the descriptor sent did not arrive"
            ids = (reply.credentials.uid, reply.credentials.gid)
    finally:
        os.close(fd)
    if how == "effective_only":
        observe("strrecvfd_ids", {(euid, egid): "effective", (ruid, rgid): "real"}.get(ids, f"other {ids}"))
    assert ids == (euid, egid), f"strrecvfd named uid/gid {ids}; the sender's effective ids are {(euid, egid)}, " \
        f"its real ids {(ruid, rgid)}"


# ---- what only STREAMS has --------------------------------------------------------------------------------------

@pytest.mark.refs(SEED_STREAMS, f"{STREAMIO}: I_RECVFD fails with EBADMSG when the message at the head is not a "
                  "passed descriptor", f"{SRC_STREAMIO} strioctl I_E_RECVFD")
def test_i_recvfd_with_data_at_the_head_fails_and_leaves_the_data(spipe, observe):
    streams.write(spipe.a, b"xyz")
    with pytest.raises(OSError) as info:
        streams.i_recvfd(spipe.b)
    observe("i_recvfd_errno_with_data_at_head", errno_name(info.value))
    assert info.value.errno == errno.EBADMSG, f"I_RECVFD failed with {errno_name(info.value)}, not EBADMSG"
    assert streams.getmsg(spipe.b, 16) == (b"xyz", 0), "the data at the head was not left there"


@pytest.mark.refs(f"{GETMSG}: EBADMSG 'Queued message to be read is not valid for getmsg'",
                  f"{SRC_STREAMIO} strgetmsg: an M_PASSFP at the head is put back")
def test_getmsg_with_a_passed_descriptor_at_the_head_fails_and_leaves_it(spipe, observe):
    with InFlightMarker() as marker:
        _queue(spipe, marker)
        with pytest.raises(OSError) as info:
            streams.getmsg(spipe.b, 16)
        observe("getmsg_errno_with_descriptor_at_head", errno_name(info.value))
        assert info.value.errno == errno.EBADMSG, f"getmsg failed with {errno_name(info.value)}, not EBADMSG"
        fd, _, _ = streams.decode_strrecvfd(streams.i_recvfd(spipe.b))
        os.close(fd)
        assert marker.released(), "the descriptor taken after getmsg failed was not the one passed"


@pytest.mark.refs(STREAMIO, f"{SRC_STREAMIO} strclose: flushq(FLUSHALL); free_passfp: closef",
                  "APUE 3e 17.4: 'the descriptor is still considered open by the receiving process'")
def test_a_descriptor_still_queued_when_the_receiving_end_closes_is_released(spipe):
    with InFlightMarker() as marker:
        _queue(spipe, marker)
        assert marker.kept_for(0.0), "the queued descriptor was released before anyone closed"
        spipe.close("b")
        assert marker.released(), "a descriptor queued at the closed end was not released"


@pytest.mark.refs(f"{SRC_FIFO}: fast mode; fifo_fastturnoff puts what was written as one message",
                  "illumos usr/src/uts/common/syscall/getmsg.c msgio: fifo_vfastoff", GETMSG)
def test_two_writes_to_a_fresh_pipe_reach_getmsg_as_one_or_two_messages(observe):
    require("streams_sendfd")
    pipe = StreamsPipe()
    try:
        streams.write(pipe.a, b"ab")
        streams.write(pipe.a, b"cd")
        messages = [streams.getmsg(pipe.b, 16)[0]]  # the first STREAMS call on the pipe
        if messages[0] != b"abcd":
            messages.append(streams.getmsg(pipe.b, 16)[0])
        observe("fresh_pipe_writes_as_messages", len(messages))
        assert b"".join(messages) == b"abcd", f"two writes arrived as {messages!r}"
        streams.write(pipe.a, b"ef")
        streams.write(pipe.a, b"gh")
        later = [streams.getmsg(pipe.b, 16)[0] for _ in range(2)]
        assert later == [b"ef", b"gh"], f"on a STREAMS pipe two writes arrived as {later!r}, not two messages"
    finally:
        pipe.close("a")
        pipe.close("b")
