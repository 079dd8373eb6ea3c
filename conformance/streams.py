"""The APUE descriptor-passing protocol over STREAMS pipes (illumos, Solaris): send_fd, send_err, recv_fd, recv_ufd.

The seed's "Passing File Descriptors over STREAMS-Based Pipes" (APUE 3e section 17.4): the wire format of
conformance.apue (optional error text, a NUL, a status byte) is written with write(2); status 0 is followed by
ioctl(I_SENDFD), which queues the descriptor at the other end's stream head as a message of its own. The receiver
reads messages with getmsg(2), hands the text to userfunc, and takes the descriptor with ioctl(I_RECVFD), whose
struct strrecvfd also names the sender's effective uid and gid (illumos os/streamio.c do_sendfp() stores
crgetuid()/crgetgid(), cr_uid and cr_gid of the sender's credentials: the effective ids).

The API and the rules are conformance.apue's (Reply, PeerError, the ProtocolError subclasses with the seed's
messages, status_for), with its deliberate differences from the seed's code where they apply: nothing aborts, error
text containing NUL is refused, and every descriptor that arrives and is not returned is closed. Particular to STREAMS:
- getmsg hands over a message longer than the read size in pieces (MOREDATA). The seed wants the NUL next to last in
  each piece, so text + NUL + status in one message (a peer writing them at once, or fifofs merging writes made before
  the pipe left its fast mode: fifosubr.c fifo_fastturnoff) that straddles MAXLINE is a format error there. Here the
  status byte must be the last byte of the message that holds the NUL.
- a descriptor queued where data belongs (getmsg: EBADMSG) is received and closed, as apue closes one that came with
  plain text; the seed's getmsg error aborts.
- status 0 followed by data (I_RECVFD: EBADMSG) or by a hangup (ENXIO) is "status = 0 but no fd"; the seed returns -1.
- a message with a control part (MORECTL) is a format error; the seed would read it forever.
- nothing is read after an error status, so a descriptor queued behind one waits for the next receive (which closes
  it) or for the receiving end's close (streamio.c strclose flushes the queue and free_passfp closes the file).

The raw calls are module-level functions (write, getmsg, i_sendfd, i_recvfd, i_nread) so that a self-test can put a
fake stream head in their place. Ioctl numbers and struct layouts come from conformance.platforms; where they are
missing, or libc has no getmsg, every function raises Unavailable.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from functools import cache
from typing import Union

from .apue import (
    MAXLINE,
    ConnectionClosed,
    MessageFormatError,
    MissingDescriptor,
    ProtocolError,
    Reply,
    Userfunc,
    deliver,
    error_text,
    format_error,
    status_for,
    write_stderr,
)
from .credentials import Credentials
from .platforms import constants
from .unavailable import Unavailable

# What this module takes from the platform's constants; one of them None means no STREAMS descriptor passing.
NEEDED = ("I_SENDFD", "I_RECVFD", "I_NREAD", "STRBUF_FORMAT", "STRRECVFD_FORMAT", "MORECTL", "MOREDATA")


def _constants():
    c = constants()
    missing = [name for name in NEEDED if getattr(c, name, None) is None]
    if missing:
        raise Unavailable(f"no STREAMS descriptor passing on {c.NAME}: {', '.join(missing)} not defined")
    return c


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def libc_getmsg():
    """getmsg(2) from the C library, or Unavailable (glibc, for one, has none)."""
    try:
        function = getattr(_libc(), "getmsg", None)
    except OSError as e:
        raise Unavailable(f"the C library cannot be loaded: {e}") from None
    if function is None:
        raise Unavailable("the C library has no getmsg(2)")
    return function


def _require():
    c = _constants()
    libc_getmsg()
    return c


# ---- the raw calls ------------------------------------------------------------------------------------------------

def write(fd: int, data: bytes) -> int:
    """write(2); on a STREAMS pipe one call makes one message (several past the pipe's maximum packet size)."""
    _constants()
    return os.write(fd, data)


def getmsg(fd: int, maxlen: int) -> tuple[bytes | None, int]:
    """getmsg(fd, NULL, &data, &flags) with flags 0 (the first message, whatever its priority) and a maxlen-byte
    buffer: the data part (None if the message has none) and the return value (MORECTL|MOREDATA: what is left)."""
    c = _constants()
    buffer = ctypes.create_string_buffer(max(maxlen, 1))
    packed = struct.pack(c.STRBUF_FORMAT, maxlen, 0, ctypes.addressof(buffer))
    strbuf = ctypes.create_string_buffer(packed, len(packed))
    flags = ctypes.c_int(0)
    more = libc_getmsg()(fd, None, strbuf, ctypes.byref(flags))
    while more < 0:
        number = ctypes.get_errno()
        if number != errno.EINTR:  # retried as Python retries its own calls (PEP 475); handlers run in between
            raise OSError(number, os.strerror(number))
        more = libc_getmsg()(fd, None, strbuf, ctypes.byref(flags))
    length = struct.unpack(c.STRBUF_FORMAT, strbuf.raw)[1]
    return (None if length < 0 else buffer.raw[:length]), more


def i_sendfd(fd: int, fd_to_send: int) -> None:
    """ioctl(fd, I_SENDFD, fd_to_send): queue the open file at the stream head of the pipe's other end."""
    fcntl.ioctl(fd, _constants().I_SENDFD, fd_to_send)


def i_recvfd(fd: int) -> bytes:
    """ioctl(fd, I_RECVFD, &strrecvfd): the structure as the kernel filled it in (see decode_strrecvfd)."""
    c = _constants()
    buffer = bytearray(struct.calcsize(c.STRRECVFD_FORMAT))
    while True:
        try:
            fcntl.ioctl(fd, c.I_RECVFD, buffer, True)
            return bytes(buffer)
        except InterruptedError:  # fcntl.ioctl does not retry as PEP 475 calls do; a handler that raises still wins
            continue


def i_nread(fd: int) -> int:
    """ioctl(fd, I_NREAD, &n)'s return value: the messages waiting at the stream head (in fifofs's fast mode, 1 if
    any bytes wait)."""
    return fcntl.ioctl(fd, _constants().I_NREAD, bytearray(struct.calcsize("i")), True)


def decode_strrecvfd(raw: bytes) -> tuple[int, int, int]:
    """(fd, uid, gid) from a struct strrecvfd."""
    fd, uid, gid = struct.unpack(_constants().STRRECVFD_FORMAT, raw)
    return fd, uid, gid


# ---- the protocol -------------------------------------------------------------------------------------------------

def send_fd(fd: int, fd_to_send: int) -> None:
    """Send fd_to_send with status 0, or, if it is negative, no descriptor and status -fd_to_send (as apue.send_fd).

    The two protocol bytes go in one write, so that they are one message. OSError when write or I_SENDFD fails.
    """
    _require()
    payload = bytes([0, status_for(fd_to_send)]) if fd_to_send < 0 else b"\0\0"
    sent = write(fd, payload)
    if sent != 2:
        raise ProtocolError(f"write sent {sent} of the 2 protocol bytes")
    if fd_to_send >= 0:
        i_sendfd(fd, fd_to_send)


def send_err(fd: int, errcode: int, msg: Union[str, bytes]) -> None:
    """Send the error text, then status -errcode (a non-negative errcode becomes -1, status 1)."""
    _require()
    view = memoryview(error_text(msg))
    while view:
        view = view[write(fd, view):]
    send_fd(fd, errcode if errcode < 0 else -1)


class _Receiver:
    """One run of the receive loop over getmsg; it holds no descriptor between calls."""

    def __init__(self, fd: int, userfunc: Userfunc | None, bufsize: int) -> None:
        self.c = _require()
        self.fd, self.userfunc, self.bufsize = fd, userfunc, bufsize
        self.reply = Reply(status=-1)

    def read(self) -> tuple[bytes, bool]:
        """The next piece of data, and whether more of its message is left."""
        while True:
            try:
                data, more = getmsg(self.fd, self.bufsize)
            except OSError as e:
                if e.errno != errno.EBADMSG:
                    raise
                # strgetmsg leaves a passed descriptor at the head and says EBADMSG: take it, only to close it.
                fd, _, _ = decode_strrecvfd(i_recvfd(self.fd))
                os.close(fd)
                self.reply.closed_fds += 1
                continue
            self.reply.reads += 1
            if more & self.c.MORECTL or data is None:
                raise MessageFormatError("message format error: a message with a control part")
            return data, bool(more & self.c.MOREDATA)

    def run(self) -> Reply:
        while True:
            data, more = self.read()
            if not data:
                raise ConnectionClosed("connection closed by server")  # getmsg after a hangup: len 0
            nul = data.find(b"\0")
            if nul < 0:
                deliver(self.reply, self.userfunc, data)
                continue
            deliver(self.reply, self.userfunc, data[:nul])
            rest = data[nul + 1:]
            while more and not rest:  # the NUL ended a piece: the status byte starts the rest of its message
                rest, more = self.read()
            if len(rest) != 1 or more:  # MOREDATA promises at least one more byte
                raise format_error(rest, more)
            return self.finish(rest[0])

    def finish(self, status: int) -> Reply:
        reply = self.reply
        reply.end(status)
        if status == 0:
            try:
                fd, uid, gid = decode_strrecvfd(i_recvfd(self.fd))
            except OSError as e:
                if e.errno not in (errno.EBADMSG, errno.ENXIO):
                    raise
                # streamio.c: EBADMSG, data where the descriptor should be; ENXIO, a hangup and nothing queued.
                raise MissingDescriptor(f"status = 0 but no fd (I_RECVFD: {errno.errorcode[e.errno]})") from None
            reply.fd = fd
            # strrecvfd holds only the effective ids (crgetuid/crgetgid), as xucred does for LOCAL_PEERCRED.
            reply.credentials = Credentials(uid=uid, euid=uid, gid=gid, egid=gid)
        return reply


def receive(fd: int, userfunc: Userfunc | None = None, *, bufsize: int = MAXLINE) -> Reply:
    """Read one protocol message; the Reply owns its descriptor and carries the sender's ids after status 0."""
    return _Receiver(fd, userfunc, bufsize).run()


def recv_fd(fd: int, userfunc: Userfunc | None = write_stderr, *, bufsize: int = MAXLINE) -> int:
    """The seed's recv_fd: the received descriptor (the caller closes it), or -status after send_err."""
    return receive(fd, userfunc, bufsize=bufsize).fd_or_status()


def recv_ufd(fd: int, userfunc: Userfunc | None = write_stderr, *,
             bufsize: int = MAXLINE) -> tuple[int, int | None]:
    """recv_ufd over STREAMS: (descriptor or -status, the sender's effective uid from strrecvfd; None after an
    error status)."""
    return receive(fd, userfunc, bufsize=bufsize).fd_and_uid()


def receive_fd(fd: int, *, bufsize: int = MAXLINE) -> int:
    """For Python callers: the received descriptor, or PeerError carrying the status and the whole text."""
    return receive(fd, None, bufsize=bufsize).fd_or_raise()
