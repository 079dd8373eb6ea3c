"""POSIX message queues through ctypes (Python has no binding): just what a token channel needs.

The queue is unlinked as soon as it is created: the name is never left behind, whatever happens to the case, and
the queue lives as long as a process holds it open (a forked child inherits the descriptor, POSIX.1-2024 fork()).
Functions, library and struct mq_attr layout come from the platform module; where they are missing, Unavailable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import time

from .platforms import constants
from .unavailable import Unavailable

# A queue needs at least one message of at least one byte; unprivileged processes get up to 10 x 8192 on Linux
# (/proc/sys/fs/mqueue/msg_max, msgsize_max), so small queues are always allowed.
MAX_MESSAGES = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _library():
    c = constants()
    if not c.MQ_LIBRARIES or c.MQ_ATTR_FORMAT is None:
        raise Unavailable(f"no POSIX message queue library or struct mq_attr layout is recorded for {c.NAME}")
    for name in c.MQ_LIBRARIES:
        path = name if name is None else ctypes.util.find_library(name)  # None: the C library itself
        if name is not None and path is None:
            continue
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError:
            continue
        if hasattr(lib, "mq_open"):
            return lib, ctypes.c_void_p if c.MQD_IS_POINTER else ctypes.c_int
    raise Unavailable(f"mq_open is in none of the libraries {c.MQ_LIBRARIES} on {c.NAME}")


def _check(result: int, call: str) -> int:
    if result == -1 or result is None:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return result


class Queue:
    """An anonymous (already unlinked) queue for messages of up to `size` bytes, open for reading and writing."""

    def __init__(self, size: int) -> None:
        lib, mqd_t = _library()
        self._lib, self.size = lib, size
        lib.mq_open.restype = mqd_t
        for name in ("mq_send", "mq_timedreceive", "mq_close", "mq_unlink"):
            getattr(lib, name).restype = ctypes.c_int if name != "mq_timedreceive" else ctypes.c_ssize_t
        attr = ctypes.create_string_buffer(struct.pack(constants().MQ_ATTR_FORMAT, 0, MAX_MESSAGES, size, 0,
                                                       0, 0, 0, 0))
        name = f"/conformance-{os.getpid()}-{time.monotonic_ns()}".encode()
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
        mqd = lib.mq_open(name, ctypes.c_int(flags), ctypes.c_uint(0o600), attr)
        if mqd is None or mqd == -1 or (not constants().MQD_IS_POINTER and mqd < 0):
            err = ctypes.get_errno()
            raise OSError(err, f"mq_open: {os.strerror(err)}")
        self._mqd = mqd
        _check(lib.mq_unlink(name), "mq_unlink")

    def send(self, data: bytes) -> None:
        _check(self._lib.mq_send(self._handle(), data, ctypes.c_size_t(len(data)), ctypes.c_uint(0)), "mq_send")

    def receive(self, timeout: float) -> bytes:
        """One message, waiting at most `timeout` seconds (TimeoutError after that)."""
        end = time.time() + timeout  # mq_timedreceive takes an absolute CLOCK_REALTIME time
        when = _Timespec(int(end), int((end % 1) * 1e9))
        buffer = ctypes.create_string_buffer(self.size)
        try:
            n = _check(self._lib.mq_timedreceive(self._handle(), buffer, ctypes.c_size_t(self.size), None,
                                                 ctypes.byref(when)), "mq_timedreceive")
        except OSError as e:
            if e.errno == errno.ETIMEDOUT:
                raise TimeoutError(f"no message within {timeout:g}s") from None
            raise
        return buffer.raw[:n]

    def _handle(self):
        if self._mqd is None:
            raise ValueError("the queue is closed")
        return ctypes.c_void_p(self._mqd) if constants().MQD_IS_POINTER else ctypes.c_int(self._mqd)

    def close(self) -> None:
        if self._mqd is not None:
            self._lib.mq_close(self._handle())
            self._mqd = None
