"""Self-tests of conformance.streams, the APUE protocol over STREAMS pipes, on a machine without STREAMS.

(a) Here the streams_sendfd probe says unsupported, with a reason, and every function of the module raises
Unavailable before it touches a descriptor. (b) With illumos's constants and a fake stream head in place of the raw
calls (an in-memory read queue of data messages and passed descriptors that answers as illumos os/streamio.c's
strgetmsg() and strioctl(I_E_RECVFD) do), send_fd/send_err/recv_fd/recv_ufd run the protocol end to end; real pipe
descriptors stand in for the passed ones, so a descriptor left open shows. (c) The illumos layouts have the sizes of
sys/stropts.h, and the raw calls hand them to libc and ioctl as the header has them.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import fcntl
import os
import struct

import pytest

from conformance import apue, streams
from conformance.cases._protocol import STATUS_RULE_IDS, STATUS_RULES, TEXT_SIZES, Collect, sample_text
from conformance.harness import fds
from conformance.platforms import constants, probes
from conformance.unavailable import Unavailable

ILLUMOS = constants("illumos")
MAXLINE = apue.MAXLINE
WRITER, READER = 1000, 1001  # the fake ignores descriptors: one stream head, one direction
SENDER_UID, SENDER_GID = 4321, 8765


class StreamHead:
    """What the writer's calls put on the reader's stream head read queue, as illumos answers for it.

    write() makes one data message; i_sendfd() queues a passed descriptor (M_PASSFP), holding a reference of its own.
    getmsg() returns a message longer than maxlen in pieces with MOREDATA, fails with EBADMSG and leaves the message
    when a descriptor is at the head (strgetmsg), answers a message with a control part with MORECTL and leaves that
    part, and returns an empty piece after a hangup. i_recvfd() fails with EBADMSG and leaves the message when data is
    at the head, and with ENXIO after a hangup with nothing queued (strioctl I_E_RECVFD).
    """

    def __init__(self) -> None:
        self.queue: collections.deque = collections.deque()  # ("data" | "ctl", bytes) or ("fd", descriptor)
        self.hangup = False

    def write(self, fd: int, data) -> int:
        self.queue.append(("data", bytes(data)))
        return len(data)

    def i_sendfd(self, fd: int, fd_to_send: int) -> None:
        self.queue.append(("fd", os.dup(fd_to_send)))

    def getmsg(self, fd: int, maxlen: int) -> tuple[bytes | None, int]:
        if not self.queue:
            assert self.hangup, "getmsg would block: nothing queued and no hangup"
            return b"", 0
        kind, item = self.queue[0]
        if kind == "fd":
            raise OSError(errno.EBADMSG, os.strerror(errno.EBADMSG))
        if kind == "ctl":
            return None, ILLUMOS.MORECTL
        if len(item) > maxlen:
            self.queue[0] = ("data", item[maxlen:])
            return item[:maxlen], ILLUMOS.MOREDATA
        self.queue.popleft()
        return item, 0

    def i_recvfd(self, fd: int) -> bytes:
        if not self.queue:
            assert self.hangup, "I_RECVFD would block: nothing queued and no hangup"
            raise OSError(errno.ENXIO, os.strerror(errno.ENXIO))
        kind, item = self.queue[0]
        if kind != "fd":
            raise OSError(errno.EBADMSG, os.strerror(errno.EBADMSG))
        self.queue.popleft()
        return struct.pack(ILLUMOS.STRRECVFD_FORMAT, item, SENDER_UID, SENDER_GID)

    def i_nread(self, fd: int) -> int:
        return len(self.queue)

    def kinds(self) -> list:
        return [kind for kind, _ in self.queue]

    def close(self) -> None:
        """strclose: the queue is flushed, and freeing an M_PASSFP closes its file (free_passfp)."""
        while self.queue:
            kind, item = self.queue.popleft()
            if kind == "fd":
                os.close(item)


@pytest.fixture
def head(monkeypatch):
    """streams.py as on illumos, its raw calls answered by a fake stream head."""
    fake = StreamHead()
    monkeypatch.setattr(streams, "constants", lambda: ILLUMOS)
    monkeypatch.setattr(streams, "libc_getmsg", lambda: None)
    for name in ("write", "getmsg", "i_sendfd", "i_recvfd", "i_nread"):
        monkeypatch.setattr(streams, name, getattr(fake, name))
    yield fake
    fake.close()


class Marker:
    """A pipe whose write end is what gets passed: EOF on the read end once every copy of it is closed."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)

    def drop_local(self) -> None:
        os.close(self.w)
        self.w = -1

    def released(self) -> bool:
        try:
            return os.read(self.r, 1) == b""
        except BlockingIOError:
            return False

    def close(self) -> None:
        for fd in (self.r, self.w):
            if fd >= 0:
                os.close(fd)


@pytest.fixture
def marker():
    m = Marker()
    yield m
    m.close()


# ---- (a) on this machine: unsupported, Unavailable, nothing touched --------------------------------------------------

def test_the_probe_says_unsupported_here_with_a_reason():
    capability = probes.run_probe("streams_sendfd")
    assert not capability.supported
    assert "STREAMS" in capability.reason and not capability.reason.startswith("probe raised"), capability.reason


def test_the_probe_with_illumos_constants_on_a_linux_kernel_answers_without_raising(monkeypatch):
    monkeypatch.setattr(probes, "constants", lambda name=None: ILLUMOS)
    supported, reason = probes.PROBES["streams_sendfd"]()  # the raw probe: run_probe's safety net would hide a raise
    assert not supported
    assert "I_NREAD" in reason or "getmsg" in reason, reason


CALLS = {
    "send_fd": lambda r, w: streams.send_fd(w, r),
    "send_fd_status": lambda r, w: streams.send_fd(w, -5),
    "send_err": lambda r, w: streams.send_err(w, -5, "text"),
    "recv_fd": lambda r, w: streams.recv_fd(r),
    "recv_ufd": lambda r, w: streams.recv_ufd(r),
    "receive": lambda r, w: streams.receive(r),
    "receive_fd": lambda r, w: streams.receive_fd(r),
    "write": lambda r, w: streams.write(w, b"\0\0"),
    "getmsg": lambda r, w: streams.getmsg(r, 16),
    "i_sendfd": lambda r, w: streams.i_sendfd(w, r),
    "i_recvfd": lambda r, w: streams.i_recvfd(r),
    "i_nread": lambda r, w: streams.i_nread(r),
    "decode_strrecvfd": lambda r, w: streams.decode_strrecvfd(bytes(20)),
}


def _raises_unavailable_and_touches_nothing(call) -> str:
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        before = set(fds.open_fds())
        with pytest.raises(Unavailable) as info:
            call(r, w)
        assert set(fds.open_fds()) == before, "a descriptor was opened or closed"
        with pytest.raises(BlockingIOError):
            os.read(r, 1)  # nothing was written
        return info.value.reason
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("name", list(CALLS))
def test_every_function_raises_unavailable_here_and_touches_nothing(name):
    reason = _raises_unavailable_and_touches_nothing(CALLS[name])
    assert reason.startswith("no STREAMS descriptor passing on linux: I_SENDFD"), reason


@pytest.mark.parametrize("name", ["send_fd", "send_err", "recv_fd", "recv_ufd", "receive_fd", "getmsg"])
def test_illumos_constants_without_getmsg_in_libc_are_unavailable(monkeypatch, name):
    monkeypatch.setattr(streams, "constants", lambda: ILLUMOS)
    assert _raises_unavailable_and_touches_nothing(CALLS[name]) == "the C library has no getmsg(2)"


# ---- (b) the protocol over a fake stream head ------------------------------------------------------------------------

def test_send_fd_queues_two_bytes_then_the_descriptor_and_recv_fd_returns_it(head, marker):
    streams.send_fd(WRITER, marker.w)
    assert head.kinds() == ["data", "fd"] and head.queue[0][1] == b"\0\0"
    marker.drop_local()
    reply = streams.receive(READER, Collect())
    with reply:
        assert reply.status == 0 and reply.fd is not None and reply.text == b""
        assert os.fstat(reply.fd).st_ino == os.fstat(marker.r).st_ino, "the descriptor returned is another file"
        assert (reply.credentials.uid, reply.credentials.gid) == (SENDER_UID, SENDER_GID)
        assert (reply.credentials.euid, reply.credentials.egid, reply.credentials.pid) == \
            (SENDER_UID, SENDER_GID, None)
        assert not marker.released(), "the descriptor returned is already closed"
    assert marker.released() and not head.queue


def test_every_error_status_round_trips_with_its_text(head):
    for status in range(1, 256):
        text = sample_text(status % 17, status)
        streams.send_err(WRITER, -status, text)
        assert [item for _, item in head.queue] == ([text] if text else []) + [bytes([0, status])]
        collect = Collect()
        assert streams.recv_fd(READER, collect) == -status
        assert collect.text == text and not head.queue


@pytest.mark.parametrize(("call", "argument", "status"), STATUS_RULES, ids=STATUS_RULE_IDS)
def test_the_status_byte_the_seed_puts_on_the_wire(head, call, argument, status):
    if call == "send_fd":
        streams.send_fd(WRITER, argument)
    else:
        streams.send_err(WRITER, argument, "why")
    wire = b"".join(item for _, item in head.queue)
    assert wire == (b"" if call == "send_fd" else b"why") + bytes([0, status])
    assert "fd" not in head.kinds()


@pytest.mark.parametrize("size", list(TEXT_SIZES))
def test_error_text_arrives_whole_in_pieces_no_longer_than_the_read_size(head, size):
    text = sample_text(TEXT_SIZES[size])
    streams.send_err(WRITER, -9, text)
    collect = Collect()
    assert streams.recv_fd(READER, collect) == -9
    assert collect.text == text
    assert all(len(chunk) <= MAXLINE for chunk in collect.chunks)
    assert len(collect.chunks) == -(-len(text) // MAXLINE), "getmsg's MOREDATA pieces were not each delivered"


@pytest.mark.parametrize("size", [MAXLINE - 2, MAXLINE - 1, MAXLINE, MAXLINE + 1])
def test_text_nul_and_status_in_one_message_across_pieces(head, size):
    """fifofs merges writes made in fast mode into one message; the status byte may start the message's next piece."""
    text = sample_text(size)
    head.write(WRITER, text + b"\0\x09")
    collect = Collect()
    reply = streams.receive(READER, collect)
    assert (reply.status, reply.text, collect.text) == (9, text, text)
    assert reply.reads == -(-(size + 2) // MAXLINE) and not head.queue


@pytest.mark.parametrize(("message", "problem"), [
    (b"ab\0\x05cd", "2 bytes after the status byte"),
    (b"text\0", "no status byte after the NUL"),
    (b"\0\x05\0\0", "2 bytes after the status byte"),
    (sample_text(MAXLINE - 2) + b"\0\x05x", "1 or more bytes after the status byte"),
    (sample_text(MAXLINE - 1) + b"\0\x05x", "1 bytes after the status byte"),
], ids=["after_status", "ends_in_nul", "two_messages_merged", "status_ends_a_piece", "status_starts_a_piece"])
def test_a_nul_not_next_to_last_in_its_message_is_a_format_error(head, message, problem):
    head.write(WRITER, message)
    with pytest.raises(apue.MessageFormatError, match=f"message format error: {problem}"):
        streams.recv_fd(READER, Collect())


def test_a_message_with_a_control_part_is_a_format_error_not_a_loop(head):
    head.queue.append(("ctl", b"proto"))
    with pytest.raises(apue.MessageFormatError, match="control part"):
        streams.recv_fd(READER, Collect())


@pytest.mark.parametrize("after", ["data", "hangup"])
def test_status_zero_without_a_descriptor_is_an_error(head, after):
    head.write(WRITER, b"\0\0")
    if after == "data":
        head.write(WRITER, b"xyz")
    else:
        head.hangup = True
    errname = "EBADMSG" if after == "data" else "ENXIO"
    with pytest.raises(apue.MissingDescriptor, match=f"status = 0 but no fd \\(I_RECVFD: {errname}\\)"):
        streams.recv_fd(READER, Collect())
    assert [item for _, item in head.queue] == ([b"xyz"] if after == "data" else []), "I_RECVFD took the data"


def test_descriptors_queued_ahead_of_text_and_status_are_closed(head, marker):
    head.i_sendfd(WRITER, marker.w)
    head.write(WRITER, b"not yet")
    head.i_sendfd(WRITER, marker.w)
    streams.send_fd(WRITER, -3)
    marker.drop_local()
    collect = Collect()
    reply = streams.receive(READER, collect)
    assert (reply.status, reply.fd, reply.closed_fds, collect.text) == (3, None, 2, b"not yet")
    assert marker.released(), "a descriptor queued where data belongs stayed open in the receiver"


def test_a_descriptor_queued_after_an_error_status_waits_for_the_next_receive(head, marker, tmp_path):
    head.write(WRITER, b"\0\x07")
    head.i_sendfd(WRITER, marker.w)
    marker.drop_local()
    assert streams.recv_fd(READER, Collect()) == -7
    assert head.kinds() == ["fd"] and not marker.released(), "recv_fd read past the error status"
    with open(tmp_path / "data", "w") as f:
        streams.send_fd(WRITER, f.fileno())
    received = streams.recv_fd(READER, Collect())
    os.close(received)
    assert marker.released() and not head.queue


@pytest.mark.parametrize("sent", [b"", b"partial text"], ids=["nothing", "text"])
def test_a_hangup_before_the_status_is_connection_closed(head, sent):
    if sent:
        head.write(WRITER, sent)
    head.hangup = True
    collect = Collect()
    with pytest.raises(apue.ConnectionClosed, match="connection closed by server"):
        streams.recv_fd(READER, collect)
    assert collect.text == sent


def test_a_failing_userfunc_is_an_error_and_takes_no_descriptor(head, marker):
    head.write(WRITER, b"text\0\0")
    head.i_sendfd(WRITER, marker.w)
    marker.drop_local()
    with pytest.raises(apue.UserfuncFailed):
        streams.recv_fd(READER, lambda _fd, data: len(data) - 1)
    assert head.kinds() == ["fd"], "the descriptor was taken after the userfunc failed"
    head.close()
    assert marker.released()


def test_an_i_recvfd_failure_is_raised_and_leaves_the_descriptor_queued(head, marker, monkeypatch):
    def full_table(fd):
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    streams.send_fd(WRITER, marker.w)
    monkeypatch.setattr(streams, "i_recvfd", full_table)
    with pytest.raises(OSError) as info:
        streams.recv_fd(READER, Collect())
    assert info.value.errno == errno.EMFILE and head.kinds() == ["fd"]


def test_recv_ufd_returns_the_senders_uid_and_none_after_an_error(head, marker):
    streams.send_fd(WRITER, marker.w)
    received, uid = streams.recv_ufd(READER, Collect())
    os.close(received)
    assert uid == SENDER_UID
    streams.send_err(WRITER, -12, "no")
    assert streams.recv_ufd(READER, Collect()) == (-12, None)


def test_receive_fd_raises_peer_error_with_status_and_text(head):
    streams.send_err(WRITER, -77, "no such file")
    with pytest.raises(apue.PeerError) as e:
        streams.receive_fd(READER)
    assert (e.value.status, e.value.text) == (77, b"no such file")


@pytest.mark.parametrize("text", [b"\0abc", b"ab\0cd", b"abc\0"])
def test_send_err_refuses_text_with_nul_and_sends_nothing(head, text):
    with pytest.raises(ValueError, match="NUL"):
        streams.send_err(WRITER, -5, text)
    assert not head.queue


def test_a_short_write_of_the_protocol_bytes_is_an_error_and_sends_no_descriptor(head, marker, monkeypatch):
    monkeypatch.setattr(streams, "write", lambda fd, data: 1)
    with pytest.raises(apue.ProtocolError, match="write sent 1 of the 2 protocol bytes"):
        streams.send_fd(WRITER, marker.w)
    assert not head.queue


# ---- (c) the layouts and the raw calls -------------------------------------------------------------------------------

def test_the_illumos_layouts_have_the_headers_sizes_and_field_order():
    # sys/stropts.h: struct strbuf { int maxlen; int len; caddr_t buf; } is 16 bytes on LP64;
    # struct strrecvfd { int fd; uid_t uid; gid_t gid; char fill[8]; } is 20 (uid_t, gid_t: unsigned int, sys/types.h).
    assert struct.calcsize(ILLUMOS.STRBUF_FORMAT) == 16
    assert struct.pack(ILLUMOS.STRBUF_FORMAT, 1, 2, 3) == struct.pack("=ii", 1, 2) + struct.pack("=Q", 3)
    raw = struct.pack("=iII", 7, 0xFFFFFFFE, 60001) + bytes(8)
    assert len(raw) == struct.calcsize(ILLUMOS.STRRECVFD_FORMAT) == 20
    assert struct.unpack(ILLUMOS.STRRECVFD_FORMAT, raw) == (7, 0xFFFFFFFE, 60001)
    assert (ILLUMOS.MORECTL, ILLUMOS.MOREDATA) == (1, 2)
    stream_ioctl = ord("S") << 8  # STR
    expected = {"I_NREAD": stream_ioctl | 0o1, "I_RECVFD": stream_ioctl | 0o16, "I_SENDFD": stream_ioctl | 0o21}
    assert {name: getattr(ILLUMOS, name) for name in expected} == expected


GETMSG = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                          use_errno=True)


@pytest.mark.parametrize(("queued", "maxlen", "expected"), [
    (b"hello", 16, (b"hello", 0)),
    (b"0123456789", 4, (b"0123", 2)),
    (None, 16, (None, 0)),
], ids=["whole", "moredata", "no_data_part"])
def test_getmsg_passes_a_strbuf_to_libc_and_reads_len_back(monkeypatch, queued, maxlen, expected):
    seen = {}

    def fake_getmsg(fd, ctl, data, flags):
        seen.update(fd=fd, ctl=ctl, flags=ctypes.c_int.from_address(flags).value)
        size = struct.calcsize(ILLUMOS.STRBUF_FORMAT)
        got_maxlen, _, buf = struct.unpack(ILLUMOS.STRBUF_FORMAT, ctypes.string_at(data, size))
        seen["maxlen"] = got_maxlen
        if queued is None:
            length, more = -1, 0
        else:
            length, more = min(len(queued), got_maxlen), ILLUMOS.MOREDATA if len(queued) > got_maxlen else 0
            ctypes.memmove(buf, queued, length)
        ctypes.memmove(data, struct.pack(ILLUMOS.STRBUF_FORMAT, got_maxlen, length, buf), size)
        return more

    callback = GETMSG(fake_getmsg)
    monkeypatch.setattr(streams, "constants", lambda: ILLUMOS)
    monkeypatch.setattr(streams, "libc_getmsg", lambda: callback)
    assert streams.getmsg(42, maxlen) == expected
    assert seen == {"fd": 42, "ctl": None, "flags": 0, "maxlen": maxlen}


def test_getmsg_retries_on_eintr_and_raises_other_errors(monkeypatch):
    errors = [errno.EINTR, errno.EINTR, errno.EBADMSG]

    def failing_getmsg(fd, ctl, data, flags):
        ctypes.set_errno(errors.pop(0))
        return -1

    callback = GETMSG(failing_getmsg)
    monkeypatch.setattr(streams, "constants", lambda: ILLUMOS)
    monkeypatch.setattr(streams, "libc_getmsg", lambda: callback)
    with pytest.raises(OSError) as info:
        streams.getmsg(3, 16)
    assert info.value.errno == errno.EBADMSG and not errors


def test_the_ioctls_pass_the_headers_numbers_and_a_strrecvfd_sized_buffer(monkeypatch):
    calls = []

    def fake_ioctl(fd, request, arg=0, mutate=True):
        calls.append((fd, request, arg if isinstance(arg, int) else len(arg)))
        if request == ILLUMOS.I_RECVFD:
            arg[:] = struct.pack(ILLUMOS.STRRECVFD_FORMAT, 9, 100, 200)
        return 3 if request == ILLUMOS.I_NREAD else 0

    monkeypatch.setattr(streams, "constants", lambda: ILLUMOS)
    monkeypatch.setattr(fcntl, "ioctl", fake_ioctl)
    streams.i_sendfd(5, 7)
    assert streams.decode_strrecvfd(streams.i_recvfd(5)) == (9, 100, 200)
    assert streams.i_nread(5) == 3
    assert calls == [(5, 0x5311, 7), (5, 0x530E, 20), (5, 0x5301, 4)]
