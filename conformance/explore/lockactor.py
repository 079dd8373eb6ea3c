"""What runs inside the processes of a lock history (harness.children.Helper): an actor's steps on its own
descriptors, and an outsider's probes. Functions are called by name, so they live at module level; an actor's
descriptors live in this module's table of that process until reset() closes them."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket

from conformance import locks
from conformance.harness import rights
from conformance.harness.children import replace_image, serve_forked

_descriptors: dict = {}  # name -> fd, in an actor's process


def reset() -> None:
    """Close every descriptor this actor holds: its locks go with them. Its forked children have ended by now."""
    while _descriptors:
        os.close(_descriptors.popitem()[1])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def step(path: str, operation: str, args: tuple) -> str | None:
    """One step of a history: None, or the errno name the call failed with."""
    try:
        if operation == "open":  # Python marks what it opens close-on-exec: only a "cloexec" open keeps the mark
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            if "cloexec" not in args[1:]:
                os.set_inheritable(fd, True)
            _descriptors[args[0]] = fd
        elif operation == "dup":  # F_DUPFD, as dup(2): the new descriptor is not close-on-exec (os.dup's would be)
            _descriptors[args[1]] = fcntl.fcntl(_descriptors[args[0]], fcntl.F_DUPFD, 0)
        elif operation == "exec":
            return exec_image()
        elif operation == "close":
            os.close(_descriptors.pop(args[0]))
        elif operation == "lock":
            name, family, kind, start, length = args
            locks.family(family).lock(_descriptors[name], kind, start, length)
        elif operation == "wait":  # sleeps until granted (F_SETLKW, F_OFD_SETLKW, flock without LOCK_NB)
            name, family, kind, start, length = args
            locks.family(family).lock(_descriptors[name], kind, start, length, wait=True)
        elif operation == "unlock":
            name, family, start, length = args
            locks.family(family).unlock(_descriptors[name], start, length)
        else:
            raise ValueError(f"no such step: {operation}")
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return None


def exec_image() -> list:
    """Replace this process's image with a new interpreter (harness.children.replace_image), which takes back the
    descriptors the exec left open: the names it keeps, sorted."""
    state = {name: (fd, *_identity(fd)) for name, fd in _descriptors.items()}
    inbox_fd = _inbox[0].fileno() if _inbox else None
    if inbox_fd is not None:
        os.set_inheritable(inbox_fd, True)
    try:
        replace_image(restore, (state, inbox_fd))
    finally:  # reached only where the exec failed
        if inbox_fd is not None:
            os.set_inheritable(inbox_fd, False)
    raise AssertionError("unreachable")


def fork() -> int:
    """Fork this actor: the child keeps every descriptor (the same open file descriptions, the same close-on-exec
    marks) and serves the channel waiting in this process's inbox; its pid. This process ignores SIGCHLD from now
    on, so its children are reaped by the kernel when they end (harness.children.ForeignHelper)."""
    _inbox[0].setblocking(False)
    _, fds, _, _ = socket.recv_fds(_inbox[0], 1, 1)
    try:
        if len(fds) != 1:
            raise RuntimeError(f"{len(fds)} descriptors arrived for the forked child's channel")
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        pid = os.fork()
        if pid == 0:
            _inbox.pop().close()  # the parent's; this process binds its own at its first inbox()
            serve_forked(fds[0])
    finally:
        for fd in fds:
            os.close(fd)
    return pid


def _identity(fd: int) -> tuple:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def restore(state: tuple) -> list:
    """In the new image: the descriptors still open that are the ones the old image had, by number and file."""
    held, inbox_fd = state
    for name, (fd, dev, ino) in held.items():
        try:
            if _identity(fd) == (dev, ino):
                _descriptors[name] = fd
        except OSError:  # closed by the exec
            pass
    if inbox_fd is not None:
        _inbox.append(socket.socket(fileno=inbox_fd))
        os.set_inheritable(inbox_fd, False)
    return sorted(_descriptors)


def probe(path: str, points: list, queried: tuple) -> dict:
    """From a description of its own (and this process, which holds no lock): for each queried family, what a query
    of each kind answers for the whole file and for the byte at each point, as (kind, start, length, pid) or None;
    and whether a non-blocking flock of each kind would be granted, if "flock" is queried."""
    answers: dict = {}
    fd = os.open(path, os.O_RDWR)
    try:
        for name in queried:
            if name == "flock":
                for kind, operation in (("read", fcntl.LOCK_SH), ("write", fcntl.LOCK_EX)):
                    try:
                        fcntl.flock(fd, operation | fcntl.LOCK_NB)
                    except BlockingIOError:
                        answers["flock", kind] = False
                    else:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                        answers["flock", kind] = True
                continue
            query = locks.family(name).query
            for point, length in [(0, 0)] + [(point, 1) for point in points]:
                for kind in locks.KINDS:
                    held = query(fd, kind, point, length)
                    answers[name, kind, point, length] = None if held is None else \
                        (held.kind, held.start, held.length, held.pid)
    finally:
        os.close(fd)
    return answers


_inbox: list = []  # this process's datagram socket for descriptors passed to it, once bound


def inbox(directory: str) -> str:
    """The path of this process's inbox, a datagram socket bound in directory at first use."""
    if not _inbox:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(os.path.join(directory, f"in{os.getpid()}"))
        except BaseException:
            sock.close()
            raise
        _inbox.append(sock)
    return _inbox[0].getsockname()


def send(address: str, name: str) -> str | None:
    """Pass descriptor `name` with SCM_RIGHTS to the inbox at address: None, or the errno name it failed with."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # sendmsg itself: socket.send_fds drops its flags and address arguments (CPython 3.9 to 3.13)
            sock.sendmsg([b"x"], [rights.rights_cmsg([_descriptors[name]])], 0, address)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return None


def take(name: str) -> str | None:
    """Receive the descriptor waiting in this process's inbox as `name`: None, or what went wrong."""
    _inbox[0].setblocking(False)
    try:
        _, fds, _, _ = socket.recv_fds(_inbox[0], 1, 1)
    except BlockingIOError:
        return "nothing arrived"
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return f"{len(fds)} descriptors arrived"
    _descriptors[name] = fds[0]
    return None
