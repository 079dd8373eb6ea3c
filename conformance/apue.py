"""The APUE descriptor-passing protocol over UNIX domain sockets: send_fd, send_err, recv_fd, recv_ufd.

The wire format (APUE 3e section 17.4, the seed's figures): optional error text, a NUL byte, then a status
byte. Status 0 means one descriptor travels as SCM_RIGHTS with that message; 1..255 is an error status and
the text before the NUL is the error message, handed to the caller's `userfunc` as it arrives.

Kept from the seed:
- `send_fd(sock, fd)` with fd < 0 sends status (-fd) & 0xFF, and 1 where that is 0 (-256, -512: "would screw
  up protocol"); `send_err` with a non-negative code sends -1, so status 1.
- `recv_fd` returns the descriptor, or -status; `userfunc(STDERR_FILENO, chunk)` gets every chunk of text.
- bytes after the status byte are "message format error"; status 0 with no descriptor is "status = 0 but no
  fd"; end of file is "connection closed by server".

Where the seed aborts (err_dump) or prints and returns -1, this module raises a ProtocolError subclass with
the seed's message. Deliberate differences, each a bug in the seed's code rather than in its protocol:
- the control buffer is CMSG_SPACE-sized with room for EXTRA_FDS descriptors, so a descriptor never goes
  missing to CMSG_LEN sizing (FreeBSD) and surplus descriptors are received and closed, not truncated;
- on a stream, text + NUL can fill a read exactly and leave the status byte for the next read; the seed calls
  that a format error, this module reads the status byte;
- every descriptor that is not the one returned (surplus, sent with an error status, sent with plain text,
  or received before an error) is closed: the receiver never leaks one;
- MSG_TRUNC (a record longer than the read size) and MSG_CTRUNC are errors, never silent loss;
- `send_err` refuses text containing NUL, which the receiver would cut at the NUL.
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from .credentials import Credentials, Mechanism, message_mechanism
from .harness import rights

MAXLINE = 4096  # the seed's read size
EXTRA_FDS = 16  # receive room beyond the one descriptor expected, so a surplus is received and closed
STDERR_FILENO = 2

Userfunc = Callable[[int, bytes], Optional[int]]
SocketLike = Union[socket.socket, int]


class ProtocolError(Exception):
    """The peer broke the protocol or went away; the message is the seed's where it has one."""


class ConnectionClosed(ProtocolError):
    pass


class MessageFormatError(ProtocolError):
    pass


class MissingDescriptor(ProtocolError):
    pass


class MissingCredentials(ProtocolError):
    pass


class TruncatedMessage(ProtocolError):
    pass


class TruncatedControl(ProtocolError):
    pass


class UserfuncFailed(ProtocolError):
    pass


class PeerError(Exception):
    """The sender called send_err: its status (1..255) and its whole error text."""

    def __init__(self, status: int, text: bytes) -> None:
        super().__init__(f"peer sent error status {status}: {text.decode(errors='replace')!r}")
        self.status = status
        self.text = text


def write_stderr(fd: int, data: bytes) -> int:
    """The default userfunc: write the whole chunk to fd (the seed passes STDERR_FILENO)."""
    sys.stderr.flush()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)


@contextmanager
def _as_socket(sock: SocketLike):
    """Accept a socket object or a descriptor number (as the C functions do) without taking ownership."""
    if isinstance(sock, socket.socket):
        yield sock
        return
    wrapped = socket.socket(fileno=sock)
    try:
        yield wrapped
    finally:
        wrapped.detach()


def status_for(fd_to_send: int) -> int:
    """The status byte send_fd puts on the wire for a negative 'descriptor' (the seed's char arithmetic)."""
    return ((-fd_to_send) & 0xFF) or 1


def send_fd(sock: SocketLike, fd_to_send: int, *, credentials: bool = False) -> None:
    """Send fd_to_send with status 0, or, if it is negative, no descriptor and status -fd_to_send.

    credentials=True adds the platform's credentials message as the seed's Figure 24 does (Linux
    SCM_CREDENTIALS stating pid/euid/egid, FreeBSD an empty SCM_CREDS); nothing where there is none.
    Raises OSError when sendmsg fails, ProtocolError when it sends less than the two protocol bytes.
    """
    if fd_to_send < 0:
        payload, cmsgs = bytes([0, status_for(fd_to_send)]), []
    else:
        payload, cmsgs = b"\0\0", [rights.rights_cmsg([fd_to_send])]
        if credentials:
            cmsgs += message_mechanism().sender_cmsgs()
    with _as_socket(sock) as s:
        sent = s.sendmsg([payload], cmsgs)
    if sent != 2:
        raise ProtocolError(f"sendmsg sent {sent} of the 2 protocol bytes")


def error_text(msg: Union[str, bytes]) -> bytes:
    """send_err's text as bytes; ValueError if it has a NUL, where the receiver would take it to end."""
    text = msg.encode() if isinstance(msg, str) else bytes(msg)
    nul = text.find(b"\0")
    if nul >= 0:
        raise ValueError(f"error text has a NUL byte at offset {nul}; the protocol ends the text at the first NUL, "
                         "so the receiver would cut it there and misread the rest")
    return text


def send_err(sock: SocketLike, errcode: int, msg: Union[str, bytes]) -> None:
    """Send the error text, then status -errcode (a non-negative errcode becomes -1, status 1)."""
    text = error_text(msg)
    with _as_socket(sock) as s:
        if text:
            s.sendall(text)
        send_fd(s, errcode if errcode < 0 else -1)


@dataclass
class Reply:
    """One complete protocol message as received. Owns `fd` until take() or close()."""

    status: int
    fd: int | None = None
    text: bytes = b""
    credentials: Credentials | None = None
    reads: int = 0  # recvmsg calls it took (text longer than the read size takes several)
    closed_fds: int = 0  # descriptors that arrived but were not the one returned, all closed
    chunks: list = field(default_factory=list)

    def take(self) -> int:
        fd, self.fd = self.fd, None
        return -1 if fd is None else fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def end(self, status: int) -> None:
        """The status byte arrived: the message, and its text, are complete."""
        self.status = status
        self.text = b"".join(self.chunks)

    def fd_or_status(self) -> int:
        """What recv_fd returns: the descriptor (the caller's from now on), or -status."""
        return self.take() if self.status == 0 else -self.status

    def fd_and_uid(self) -> tuple[int, int | None]:
        """What recv_ufd returns: (the descriptor, the sender's uid), or (-status, None)."""
        if self.status != 0:
            return -self.status, None
        return self.take(), self.credentials.uid

    def fd_or_raise(self) -> int:
        """What receive_fd returns: the descriptor, or PeerError with the status and the whole text."""
        if self.status != 0:
            raise PeerError(self.status, self.text)
        return self.take()

    def __enter__(self) -> Reply:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deliver(reply: Reply, userfunc: Userfunc | None, text: bytes) -> None:
    """Hand a chunk of error text to userfunc (the seed's userfunc(STDERR_FILENO, buf, nread)) and keep it."""
    if not text:
        return
    reply.chunks.append(text)
    if userfunc is not None:
        written = userfunc(STDERR_FILENO, text)
        if written is not None and written != len(text):
            raise UserfuncFailed(f"userfunc took {written} of {len(text)} bytes of error text")


def format_error(rest: bytes, more: bool = False) -> MessageFormatError:
    """The seed's "message format error" for what followed the NUL (`more`: the message goes on past `rest`)."""
    if not rest:
        return MessageFormatError("message format error: no status byte after the NUL")
    count = f"{len(rest) - 1 + more}{' or more' if more else ''}"
    return MessageFormatError(f"message format error: {count} bytes after the status byte")


def _close_all(fds: list) -> int:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    count = len(fds)
    fds.clear()
    return count


class _Receiver:
    """One run of the receive loop; `held` holds every descriptor received and not yet handed out."""

    def __init__(self, sock: socket.socket, userfunc: Userfunc | None, mechanism: Mechanism | None,
                 bufsize: int) -> None:
        self.sock, self.userfunc, self.mechanism, self.bufsize = sock, userfunc, mechanism, bufsize
        self.controllen = rights.rights_space(1 + EXTRA_FDS) + (mechanism.control_space() if mechanism else 0)
        self.held: list = []
        self.reply = Reply(status=-1)
        self.stream = sock.type == socket.SOCK_STREAM

    def read(self, size: int) -> bytes:
        data, ancdata, flags, _ = self.sock.recvmsg(size, self.controllen)
        self.reply.reads += 1
        got = rights.parse(data, ancdata, flags)
        self.held += got.take()
        if flags & getattr(socket, "MSG_CTRUNC", 0):
            raise TruncatedControl(f"control data truncated (MSG_CTRUNC) in a {self.controllen}-byte buffer")
        if flags & getattr(socket, "MSG_TRUNC", 0):
            raise TruncatedMessage(f"message truncated (MSG_TRUNC): a record longer than the {size}-byte read size")
        if not data:
            raise ConnectionClosed("connection closed by server")
        if self.mechanism is not None:
            creds = self.mechanism.read(self.sock, got.other)
            if creds is not None:
                self.reply.credentials = creds
        return data

    def deliver(self, text: bytes) -> None:
        deliver(self.reply, self.userfunc, text)

    def run(self) -> Reply:
        while True:
            data = self.read(self.bufsize)
            nul = data.find(b"\0")
            if nul < 0:
                # Plain error text. A descriptor attached to it is not part of the protocol: close it.
                self.reply.closed_fds += _close_all(self.held)
                self.deliver(data)
                continue
            self.deliver(data[:nul])  # text that ended at the NUL is whole, whatever follows
            rest = data[nul + 1:]
            if not rest and self.stream:
                # Text + NUL filled this read; on a stream the status byte is simply the next byte.
                rest = self.read(1)
            if len(rest) != 1:
                raise format_error(rest)
            return self.finish(rest[0])

    def finish(self, status: int) -> Reply:
        reply = self.reply
        reply.end(status)
        if status == 0:
            if not self.held:
                raise MissingDescriptor("status = 0 but no fd")
            if self.mechanism is not None and reply.credentials is None:
                raise MissingCredentials(f"status = 0 but no {self.mechanism.name} credentials")
            reply.fd = self.held.pop(0)
        reply.closed_fds += _close_all(self.held)
        return reply


def receive(sock: SocketLike, userfunc: Userfunc | None = None, *, credentials: bool = False,
            bufsize: int = MAXLINE) -> Reply:
    """Read one protocol message; the Reply owns its descriptor. Raises ProtocolError, closing all it got.

    credentials=True asks for the sender's credentials with the platform's mechanism (see credentials.py);
    it raises CredentialsUnavailable where there is none.
    """
    mechanism = message_mechanism() if credentials else None
    with _as_socket(sock) as s:
        if mechanism is not None:
            mechanism.prepare_receiver(s)
        receiver = _Receiver(s, userfunc, mechanism, bufsize)
        try:
            return receiver.run()
        finally:
            _close_all(receiver.held)


def recv_fd(sock: SocketLike, userfunc: Userfunc | None = write_stderr, *, bufsize: int = MAXLINE) -> int:
    """The seed's recv_fd: the received descriptor (the caller closes it), or -status after send_err."""
    return receive(sock, userfunc, bufsize=bufsize).fd_or_status()


def recv_ufd(sock: SocketLike, userfunc: Userfunc | None = write_stderr, *,
             bufsize: int = MAXLINE) -> tuple[int, int | None]:
    """The seed's recv_ufd: (descriptor or -status, the sender's uid); the uid is None after send_err."""
    return receive(sock, userfunc, credentials=True, bufsize=bufsize).fd_and_uid()


def receive_fd(sock: SocketLike, *, bufsize: int = MAXLINE) -> int:
    """For Python callers: the received descriptor, or PeerError carrying the status and the whole text."""
    return receive(sock, None, bufsize=bufsize).fd_or_raise()
