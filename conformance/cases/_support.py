"""Small helpers the case modules share (not cases themselves)."""

from __future__ import annotations

import errno
import os
import resource
import socket

from conformance import locks
from conformance.harness import fds as fdlist
from conformance.harness.children import Child
from conformance.harness.deadlines import deadline
from conformance.harness.waiting import readable
from conformance.outcomes import Unsupported, require
from conformance.unavailable import Unavailable

# How long a case waits for the kernel to release a descriptor it holds in flight (garbage collection
# may run asynchronously); the wait ends at the first EOF, so it costs nothing when the kernel is prompt.
RELEASE_WAIT = deadline(5.0)


# Where two names share a number (Linux EDEADLOCK == EDEADLK), reports use the POSIX one on every platform.
_PREFERRED = {getattr(errno, name): name for name in ("EDEADLK", "EAGAIN", "EOPNOTSUPP") if hasattr(errno, name)}


def or_unsupported(get, *args):
    """get(*args), with the reference code's Unavailable (no such mechanism here) turned into `unsupported`."""
    try:
        return get(*args)
    except Unavailable as e:
        raise Unsupported(e.reason) from None


def require_lock_family(family: locks.Family) -> None:
    """Make the case `unsupported` where the lock family is missing: its capability probe's reason, else what the
    reference code lacks to take it here (a name, the struct flock layout)."""
    require(family.probe)
    or_unsupported(family.available)


def free_pid() -> int:
    """The pid of a child that has exited and been reaped: no process has it (pids are not reused at once)."""
    with Child(os.getpid) as child:
        return child.join()


def errno_name(e: OSError | int) -> str:
    number = e if isinstance(e, int) else e.errno
    return _PREFERRED.get(number) or errno.errorcode.get(number, str(number))


def released(read_fd: int, timeout: float = RELEASE_WAIT) -> bool:
    """True once every write end of the pipe is closed: read() returns EOF. Data read on the way is dropped."""
    while True:
        if not readable(read_fd, timeout):
            return False
        if os.read(read_fd, 4096) == b"":
            return True


def still_open_after(read_fd: int, window: float) -> bool:
    """True if no EOF arrives within a short window (used only to show something is *kept*)."""
    return not readable(read_fd, window)


def nothing_queued(sock: socket.socket) -> bool:
    """No message waits on sock. Peeks without a control buffer, so no descriptor is installed."""
    try:
        sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        return True
    return False


def data_file(workdir, name: str = "data", content: bytes = b"0123456789", flags: int = os.O_RDWR) -> int:
    """A small file of the case's own, opened; the caller closes the descriptor."""
    path = workdir / name
    path.write_bytes(content)
    return os.open(path, flags)


def same_file(fd_a: int, fd_b: int) -> bool:
    return fdlist.identity(fd_a) == fdlist.identity(fd_b) and fdlist.identity(fd_a) is not None


def raise_nofile_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (never above the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        # macOS refuses a soft limit above kern.maxfilesperproc (kern.maxfiles for root) with EINVAL, even with
        # an RLIM_INFINITY hard limit (XNU bsd/kern/kern_resource.c dosetrlimit): keep what we have, the callers
        # size by it.
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class InFlightMarker:
    """A pipe whose write end is sent along with the descriptors under test.

    Once the sender drops its own copy (`drop_local`), EOF on the read end proves that every copy of the
    write end, the one in flight included, has been released. Both ends are closed on every path.
    """

    def __init__(self) -> None:
        self.r, self.w = os.pipe()

    def drop_local(self) -> None:
        if self.w >= 0:
            os.close(self.w)
            self.w = -1

    def released(self, timeout: float = RELEASE_WAIT) -> bool:
        return released(self.r, timeout)

    def kept_for(self, window: float) -> bool:
        return still_open_after(self.r, window)

    def close(self) -> None:
        self.drop_local()
        if self.r >= 0:
            os.close(self.r)
            self.r = -1

    def __enter__(self) -> InFlightMarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
