"""The APUE descriptor-passing protocol (send_fd, send_err, recv_fd, recv_ufd) over UNIX domain sockets.

The wire format is the seed's (APUE 3e section 17.4, Figures 17.13-17.15, 17.20-17.21 in the seed's
numbering "send_err", "send_fd/recv_fd for UNIX domain sockets", "Sending/Receiving credentials"): optional
error text, NUL, status byte; status 0 carries one SCM_RIGHTS descriptor. The implementation under test is
conformance.apue; malformed messages are built by hand with sendmsg. Each case checks that every descriptor
the receiver got and did not return was closed (an in-flight marker pipe reaches EOF).
"""

from __future__ import annotations

import os
import socket

import pytest

from conformance import apue
from conformance.credentials import CredentialsUnavailable, message_mechanism
from conformance.harness import rights
from conformance.harness.children import Child
from conformance.harness.deadlines import DEFAULT_DEADLINE, deadline
from conformance.harness.privileges import NOBODY, drop_privileges
from conformance.outcomes import Unsupported

from ._protocol import STATUS_RULE_IDS, STATUS_RULES, TEXT_SIZES, Collect, check_same_open_file
from ._protocol import sample_text as _text
from ._support import InFlightMarker, data_file, nothing_queued, or_unsupported, same_file

SEED = "APUE 3e 17.4 (seed 000)"
SEED_SEND_ERR = f"{SEED}: Figure 'The send_err function'"
SEED_UNIX = f"{SEED}: Figures 'send_fd/recv_fd for UNIX domain sockets'"
SEED_CREDS = f"{SEED}: Figures 24-25 'Sending/Receiving credentials over UNIX domain sockets'"
POSIX_RIGHTS = "POSIX.1-2024 XBD <sys/socket.h>: SCM_RIGHTS"
MAXLINE = apue.MAXLINE


# ---- the descriptor and every status ---------------------------------------------------------------------------

@pytest.mark.refs(SEED_UNIX, POSIX_RIGHTS)
def test_send_fd_delivers_the_same_open_file(pair, workdir):
    a, b = pair
    fd = data_file(workdir)
    try:
        apue.send_fd(a, fd)
        check_same_open_file(fd, apue.recv_fd(b, Collect()))
    finally:
        os.close(fd)
    assert nothing_queued(b), "bytes left over after one protocol message"


@pytest.mark.refs(SEED_SEND_ERR, SEED_UNIX, "seed: 'the value of status must be in the range 1 through 255'")
def test_every_error_status_round_trips_with_its_text(pair, observe):
    a, b = pair
    wrong = []
    for status in range(1, 256):
        text = f"error {status}: ".encode() + _text(status % 17, status)
        apue.send_err(a, -status, text)
        collect = Collect()
        result = apue.recv_fd(b, collect)
        if result != -status or collect.text != text:
            wrong.append(f"{status}: recv_fd returned {result}, text {collect.text[:24]!r}")
    observe("statuses_checked", 255)
    observe("statuses_wrong", len(wrong))
    assert not wrong, f"{len(wrong)} of 255 statuses did not round-trip: " + "; ".join(wrong[:8])
    assert nothing_queued(b)


@pytest.mark.parametrize(("call", "argument", "status"), STATUS_RULES, ids=STATUS_RULE_IDS)
@pytest.mark.refs(SEED_UNIX, SEED_SEND_ERR, "seed send_fd: 'if (buf[1] == 0) buf[1] = 1; /* -256, etc. */'")
def test_status_byte_on_the_wire(stream_pair, call, argument, status):
    a, b = stream_pair
    if call == "send_fd":
        apue.send_fd(a, argument)
        expected_wire = bytes([0, status])
    else:
        apue.send_err(a, argument, b"why")
        expected_wire = b"why" + bytes([0, status])
    wire = b""
    while len(wire) < len(expected_wire):
        data, ancdata, _, _ = b.recvmsg(64, rights.rights_space(1))
        with rights.parse(data, ancdata, 0) as got:
            assert not got.fds, "a status message carried a descriptor"
        assert data, "the sender's message ended early"
        wire += data
    assert wire == expected_wire, f"{call}({argument}) put {wire!r} on the wire, the seed puts {expected_wire!r}"


# ---- error text ------------------------------------------------------------------------------------------------

def _send_err_later(sock: socket.socket, text: bytes, status: int) -> None:
    apue.send_err(sock, -status, text)


@pytest.mark.parametrize("size", list(TEXT_SIZES), ids=list(TEXT_SIZES))
@pytest.mark.refs(SEED_SEND_ERR, SEED_UNIX, "seed recv_fd: 'Any characters read up to this point are passed to "
                  "the caller's userfunc'")
def test_error_text_arrives_whole_and_in_order_on_a_stream(stream_pair, size):
    a, b = stream_pair
    text = _text(TEXT_SIZES[size])
    collect = Collect()
    if len(text) <= 2 * MAXLINE:
        # Queued whole before the first read, so the read boundaries fall where the read size puts them:
        # read_size_minus_one leaves the status byte alone in the second read.
        apue.send_err(a, -9, text)
        result = apue.recv_fd(b, collect)
    else:
        b.settimeout(DEFAULT_DEADLINE)  # a sender that died mid-text makes the receive time out, not hang
        with Child(_send_err_later, a, text, 9) as child:  # more than a socket buffer: the sender must block
            try:
                result = apue.recv_fd(b, collect)
            except socket.timeout:  # TimeoutError from 3.10; its own class on 3.9
                child.join(deadline(1.0))  # the sender's own exception says why nothing more came
                raise
            finally:
                b.settimeout(None)  # nothing_queued() below needs a plain socket: with a timeout it would wait
            child.join()
    assert result == -9, f"recv_fd returned {result}, not -9"
    collect.check_whole(text)
    assert nothing_queued(b)


@pytest.mark.parametrize("socktype", ["dgram", "seqpacket"])
@pytest.mark.parametrize("size", ["empty", "one_byte", "read_size"])
@pytest.mark.refs(SEED_SEND_ERR, "POSIX.1-2024 XSH recvmsg(): message boundaries on SOCK_DGRAM/SOCK_SEQPACKET")
def test_error_text_in_one_record(pair, size):
    a, b = pair
    text = _text(TEXT_SIZES[size])
    apue.send_err(a, -200, text)
    collect = Collect()
    assert apue.recv_fd(b, collect) == -200
    assert collect.text == text


@pytest.mark.parametrize("socktype", ["dgram", "seqpacket"])
@pytest.mark.refs(SEED_SEND_ERR, "POSIX.1-2024 XSH recvmsg(): MSG_TRUNC")
def test_error_text_longer_than_one_read_in_one_record_is_an_error(pair):
    a, b = pair
    apue.send_err(a, -3, _text(MAXLINE + 1))
    with pytest.raises(apue.TruncatedMessage, match="MSG_TRUNC"):
        apue.recv_fd(b, Collect())
    assert apue.recv_fd(b, Collect()) == -3, "the status after the truncated record was lost"


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.refs(SEED_SEND_ERR, "seed recv_fd: text ends at the first NUL byte")
def test_text_containing_nul_is_refused_by_the_sender(pair, where):
    a, b = pair
    text = {"start": b"\0abc", "middle": b"ab\0cd", "end": b"abc\0"}[where]
    with pytest.raises(ValueError, match="NUL"):
        apue.send_err(a, -5, text)
    assert nothing_queued(b), "a refused message was partly sent"


# ---- malformed messages built by hand ---------------------------------------------------------------------------

def _send_raw(sock, data: bytes, fds=()) -> None:
    assert rights.send_fds(sock, list(fds), data) == len(data)


@pytest.mark.parametrize("with_fd", [False, True], ids=["no_fd", "with_fd"])
@pytest.mark.refs(SEED_UNIX, "seed recv_fd: 'if (ptr != &buf[nr-1]) err_dump(\"message format error\")'")
def test_bytes_after_the_status_byte_are_a_format_error(pair, with_fd):
    a, b = pair
    with InFlightMarker() as marker:
        _send_raw(a, b"ab\0\x05cd", [marker.w] if with_fd else [])
        marker.drop_local()
        with pytest.raises(apue.MessageFormatError, match="message format error"):
            apue.recv_fd(b, Collect())
        assert marker.released(), "the descriptor of a malformed message was not closed"


@pytest.mark.parametrize("socktype", ["dgram", "seqpacket"])
@pytest.mark.refs(SEED_UNIX, "seed recv_fd: the NUL must be next to last")
def test_a_record_ending_in_nul_is_a_format_error(pair):
    a, b = pair
    _send_raw(a, b"text\0")
    with pytest.raises(apue.MessageFormatError, match="message format error"):
        apue.recv_fd(b, Collect())


@pytest.mark.refs(SEED_UNIX, "seed recv_fd: 'if (msg.msg_controllen != CONTROLLEN) err_dump(\"status = 0 but no fd\")'")
def test_status_zero_without_a_descriptor_is_an_error(pair):
    a, b = pair
    _send_raw(a, b"\0\0")
    with pytest.raises(apue.MissingDescriptor, match="status = 0 but no fd"):
        apue.recv_fd(b, Collect())


@pytest.mark.refs(SEED_UNIX, "seed recv_fd: a non-zero status means there is no descriptor to receive")
def test_a_descriptor_sent_with_an_error_status_is_closed(pair):
    a, b = pair
    with InFlightMarker() as marker:
        _send_raw(a, b"\0\x07", [marker.w])
        marker.drop_local()
        assert apue.recv_fd(b, Collect()) == -7
        assert marker.released(), "the descriptor that came with status 7 is still open in the receiver"


@pytest.mark.parametrize("surplus", [1, 4])
@pytest.mark.refs(SEED_UNIX, "seed: send_fd sends exactly one descriptor")
def test_surplus_descriptors_are_closed_and_the_first_returned(pair, workdir, surplus):
    a, b = pair
    fd = data_file(workdir)
    try:
        with InFlightMarker() as marker:
            _send_raw(a, b"\0\0", [fd] + [marker.w] * surplus)
            marker.drop_local()
            received = apue.recv_fd(b, Collect())
            try:
                assert received >= 0 and same_file(fd, received), "the first descriptor was not the one returned"
            finally:
                os.close(received)
            assert marker.released(), f"the {surplus} surplus descriptor(s) were not closed"
    finally:
        os.close(fd)


@pytest.mark.parametrize("final", ["error_status", "descriptor"])
@pytest.mark.refs(SEED_UNIX, "seed recv_fd: text before the NUL is error text only")
def test_a_descriptor_attached_to_error_text_is_closed(pair, workdir, final):
    a, b = pair
    fd = data_file(workdir)
    try:
        with InFlightMarker() as marker:
            _send_raw(a, b"not yet", [marker.w])
            marker.drop_local()
            _send_raw(a, b"\0\3" if final == "error_status" else b"\0\0", [] if final == "error_status" else [fd])
            collect = Collect()
            result = apue.recv_fd(b, collect)
            try:
                if final == "error_status":
                    assert result == -3
                else:
                    assert result >= 0 and same_file(result, fd), "the descriptor returned is not the final message's"
            finally:
                if result >= 0:
                    os.close(result)
            assert collect.text == b"not yet"
            assert marker.released(), "a descriptor sent with plain text stayed open in the receiver"
    finally:
        os.close(fd)


# What the peer sent before closing its end; "nul" leaves the status byte unsent (only a stream can split there).
CLOSE_STAGES = {"nothing": b"", "text": b"partial text", "nul": b"partial text\0"}


@pytest.mark.parametrize(("socktype", "stage"), [("stream", s) for s in CLOSE_STAGES]
                         + [("seqpacket", s) for s in ("nothing", "text")])
@pytest.mark.refs(SEED_UNIX, "seed recv_fd: 'else if (nr == 0) { err_ret(\"connection closed by server\"); ...'")
def test_peer_closing_mid_message_is_connection_closed(pair, stage):
    a, b = pair
    if CLOSE_STAGES[stage]:
        _send_raw(a, CLOSE_STAGES[stage])
    a.close()
    b.settimeout(deadline(5.0))
    collect = Collect()
    with pytest.raises(apue.ConnectionClosed, match="connection closed by server"):
        apue.recv_fd(b, collect)
    assert collect.text == CLOSE_STAGES[stage].rstrip(b"\0"), "text sent before the close was not delivered"


@pytest.mark.refs(SEED_UNIX, "Python API: PeerError carries the status and the whole text")
def test_receive_fd_raises_peer_error_with_status_and_text(stream_pair):
    a, b = stream_pair
    apue.send_err(a, -77, "no such file")
    with pytest.raises(apue.PeerError) as e:
        apue.receive_fd(b)
    assert (e.value.status, e.value.text) == (77, b"no such file")


@pytest.mark.refs(SEED_UNIX, "seed recv_fd: 'if ((*userfunc)(STDERR_FILENO, buf, nr) != nr) return(-1)'")
def test_a_failing_userfunc_is_an_error_and_leaks_nothing(stream_pair):
    a, b = stream_pair
    with InFlightMarker() as marker:
        _send_raw(a, b"text\0\0", [marker.w])  # text and a descriptor in one message, then a userfunc that fails
        marker.drop_local()
        with pytest.raises(apue.UserfuncFailed):
            apue.recv_fd(b, lambda _fd, data: len(data) - 1)
        assert marker.released(), "the descriptor received before the userfunc failed was not closed"


# ---- recv_ufd: the sender's uid ---------------------------------------------------------------------------------

def _mechanism():
    return or_unsupported(message_mechanism)


def _send_fd_as(sock, fd: int, uid: int | None) -> int:
    if uid is not None:
        drop_privileges(uid)
    apue.send_fd(sock, fd, credentials=True)
    return os.geteuid()


@pytest.mark.refs(SEED_CREDS, "unix(7) SO_PASSCRED/SCM_CREDENTIALS", "FreeBSD unix(4) SCM_CREDS",
                  "macOS unix(4) LOCAL_PEERCRED")
def test_recv_ufd_returns_the_descriptor_and_a_uid(pair, workdir, observe):
    a, b = pair
    mechanism = _mechanism()
    observe("ufd_mechanism", mechanism.name)
    mechanism.prepare_receiver(b)
    fd = data_file(workdir)
    try:
        apue.send_fd(a, fd, credentials=True)
        try:
            received, uid = apue.recv_ufd(b, Collect())
        except CredentialsUnavailable as e:  # LOCAL_PEERCRED has no answer on a datagram socket
            raise Unsupported(e.reason) from None
        try:
            assert received >= 0 and same_file(fd, received), "recv_ufd did not return the descriptor sent"
        finally:
            os.close(received)
        assert uid == os.geteuid(), f"recv_ufd reported uid {uid}, the sender's is {os.geteuid()}"
    finally:
        os.close(fd)




@pytest.mark.refs(SEED_CREDS, "unix(7) SCM_CREDENTIALS", "FreeBSD unix(4) SCM_CREDS: filled in by the kernel")
def test_recv_ufd_names_a_sender_of_another_uid(pair, workdir):
    a, b = pair
    mechanism = _mechanism()
    if not mechanism.per_message:
        raise Unsupported(f"no per-message credentials: recv_ufd gets the uid from {mechanism.name}, which names "
                          "the process that connected, not the one that sent")
    if os.geteuid() != 0:
        raise Unsupported("needs root to run the sender under another uid")
    mechanism.prepare_receiver(b)
    fd = data_file(workdir)
    try:
        with Child(_send_fd_as, a, fd, NOBODY) as child:
            # Joined first: the message fits in the socket buffer, and a sender that failed (its exception is
            # raised here) must not leave the receive below blocked until the run's timeout.
            assert child.join() == NOBODY
        received, uid = apue.recv_ufd(b, Collect())
        os.close(received)
        assert uid == NOBODY, f"recv_ufd reported uid {uid}, the sender ran as {NOBODY}"
    finally:
        os.close(fd)
