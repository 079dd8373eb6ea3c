"""Byte channels that cannot carry descriptors, for the "send a token, redeem it" pattern (seed 004).

The QNX article sends its dup message over "pipe, socket, shared memory, native IPC, carrier pigeon" and shows a
POSIX message queue. Each channel here is made in the receiving process before fork, so the sender (a child)
inherits what it needs; the sender calls send(), the receiver receive() with a deadline. close() releases every
descriptor and name the channel made; it is safe to call twice.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time

from .mqueue import Queue
from .unavailable import Unavailable

KINDS = ("pipe", "fifo", "unix_dgram", "udp", "mqueue")


def _read_exact(fd: int, size: int, timeout: float) -> bytes:
    end = time.monotonic() + timeout
    data = b""
    while len(data) < size:
        ready, _, _ = select.select([fd], [], [], max(end - time.monotonic(), 0))
        if not ready:
            raise TimeoutError(f"{len(data)} of {size} bytes within {timeout:g}s")
        try:
            chunk = os.read(fd, size - len(data))
        except BlockingIOError:
            continue
        if not chunk:
            raise EOFError(f"the channel closed after {len(data)} of {size} bytes")
        data += chunk
    return data


class Channel:
    kind = ""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def receive(self, size: int, timeout: float) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _close_fds(self, *names: str) -> None:
        for name in names:
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pipe(Channel):
    kind = "pipe"

    def __init__(self) -> None:
        self.r, self.w = os.pipe()

    def send(self, data: bytes) -> None:
        # Writes of up to PIPE_BUF bytes are atomic (POSIX.1-2024 write()); a token is far smaller.
        os.write(self.w, data)

    def receive(self, size: int, timeout: float) -> bytes:
        return _read_exact(self.r, size, timeout)

    def close(self) -> None:
        self._close_fds("r", "w")


class Fifo(Channel):
    """A named pipe: the sender opens it by name, as an unrelated process would."""

    kind = "fifo"

    def __init__(self, directory) -> None:
        if not hasattr(os, "mkfifo"):
            raise Unavailable("os.mkfifo is not available")
        self.path = os.path.join(os.fspath(directory), "token.fifo")
        os.mkfifo(self.path, 0o600)
        # The read end first, without blocking, so the sender's open for writing never waits (POSIX open()). The
        # receiver also holds a write end: once a sender has closed, reads wait for the deadline, not end-of-file.
        self.r = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.keep = os.open(self.path, os.O_WRONLY)

    def send(self, data: bytes) -> None:
        w = os.open(self.path, os.O_WRONLY)
        try:
            os.write(w, data)
        finally:
            os.close(w)

    def receive(self, size: int, timeout: float) -> bytes:
        return _read_exact(self.r, size, timeout)

    def close(self) -> None:
        self._close_fds("r", "keep")
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class _Datagram(Channel):
    def __init__(self, receiver: socket.socket, sender: socket.socket, address) -> None:
        self.receiver, self.sender, self.address = receiver, sender, address

    def send(self, data: bytes) -> None:
        if self.address is None:
            self.sender.send(data)
        else:
            self.sender.sendto(data, self.address)

    def receive(self, size: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.receiver], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no datagram within {timeout:g}s")
        return self.receiver.recv(size)

    def close(self) -> None:
        self.receiver.close()
        self.sender.close()


class UnixDatagram(_Datagram):
    kind = "unix_dgram"

    def __init__(self) -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        super().__init__(a, b, None)


class Udp(_Datagram):
    """UDP on the loopback address: a channel that could never carry a descriptor."""

    kind = "udp"

    def __init__(self) -> None:
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            receiver.bind(("127.0.0.1", 0))
        except OSError as e:
            receiver.close()
            raise Unavailable(f"cannot bind UDP to 127.0.0.1 (no loopback here?): "
                              f"{errno.errorcode.get(e.errno, e.errno)}") from None
        super().__init__(receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM), receiver.getsockname())


class MessageQueue(Channel):
    kind = "mqueue"

    def __init__(self, size: int) -> None:
        try:
            self.queue = Queue(size)
        except OSError as e:
            if e.errno != errno.ENOSYS:
                raise
            raise Unavailable("mq_open: ENOSYS (a kernel without POSIX message queues)") from None

    def send(self, data: bytes) -> None:
        self.queue.send(data)

    def receive(self, size: int, timeout: float) -> bytes:
        return self.queue.receive(timeout)

    def close(self) -> None:
        self.queue.close()


def make(kind: str, directory, message_size: int) -> Channel:
    """A new channel of this kind (Unavailable where the platform lacks it)."""
    if kind == "pipe":
        return Pipe()
    if kind == "fifo":
        return Fifo(directory)
    if kind == "unix_dgram":
        return UnixDatagram()
    if kind == "udp":
        return Udp()
    if kind == "mqueue":
        return MessageQueue(message_size)
    raise ValueError(f"unknown channel kind {kind!r}; known: {', '.join(KINDS)}")
