"""What runs inside the processes of a lock history (harness.children.Helper): an actor's steps on its own
descriptors, and an outsider's probes. Functions are called by name, so they live at module level; an actor's
descriptors live in this module's table of that process until reset() closes them."""

from __future__ import annotations

import array
import errno
import fcntl
import os
import socket

from conformance import locks

_descriptors: dict = {}  # name -> fd, in an actor's process


def reset() -> None:
    """Close every descriptor this actor holds: its locks go with them."""
    while _descriptors:
        os.close(_descriptors.popitem()[1])


def step(path: str, operation: str, args: tuple) -> str | None:
    """One step of a history: None, or the errno name the call failed with."""
    try:
        if operation == "open":
            _descriptors[args[0]] = os.open(path, os.O_RDWR)
        elif operation == "dup":
            _descriptors[args[1]] = os.dup(_descriptors[args[0]])
        elif operation == "close":
            os.close(_descriptors.pop(args[0]))
        elif operation == "lock":
            name, family, kind, start, length = args
            locks.family(family).lock(_descriptors[name], kind, start, length)
        elif operation == "unlock":
            name, family, start, length = args
            locks.family(family).unlock(_descriptors[name], start, length)
        else:
            raise ValueError(f"no such step: {operation}")
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return None


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
            sock.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [_descriptors[name]]))],
                         0, address)
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
