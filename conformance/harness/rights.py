"""Sending and receiving descriptors with SCM_RIGHTS.

The receive helper sizes its control buffer with CMSG_SPACE (never CMSG_LEN, which is too small for one
descriptor on FreeBSD), parses every control message, and owns every descriptor it parsed: a Received is
a context manager that closes them all, and a parse that fails half-way closes what it had.
"""

from __future__ import annotations

import array
import os
import socket
import struct
from dataclasses import dataclass, field

from ..platforms import constants

INT_SIZE = array.array("i").itemsize
_INT = struct.Struct("i")  # one descriptor, packed for less than an array costs


class _IntStructs(dict):
    """n -> struct.Struct of n native ints (array "i"'s layout), made on first use, to unpack a received group for
    less than an array costs. Bounded for a caller that sees ever new counts."""

    def __missing__(self, n: int) -> struct.Struct:
        layout = struct.Struct(f"{n}i")
        if len(self) < 512:
            self[n] = layout
        return layout


_INTS = _IntStructs()


def cmsg_space(nbytes: int) -> int:
    """CMSG_SPACE from the socket module, or from the platform's alignment when Python lacks it."""
    space = getattr(socket, "CMSG_SPACE", None)
    if space is not None:
        return space(nbytes)
    align = constants().CMSG_ALIGNMENT or 8
    header = (12 + align - 1) // align * align  # cmsghdr is len, level, type
    return header + (nbytes + align - 1) // align * align


def rights_space(nfds: int) -> int:
    return cmsg_space(nfds * INT_SIZE)


def rights_cmsg(fds) -> tuple[int, int, bytes]:
    if type(fds) is list and len(fds) == 1:
        try:
            return socket.SOL_SOCKET, socket.SCM_RIGHTS, _INT.pack(fds[0])
        except struct.error:
            pass  # not an int in range: the array raises (or accepts) as it always did
    return socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes()


def send_fds(sock: socket.socket, fds, data: bytes = b"x", flags: int = 0, groups=None) -> int:
    """Send data with fds in one SCM_RIGHTS message (or with several, one per list in groups)."""
    if groups is not None:
        cmsgs = [rights_cmsg(g) for g in groups]
    elif fds:
        cmsgs = [rights_cmsg(fds)]
    else:
        cmsgs = []
    return sock.sendmsg([data], cmsgs, flags)


@dataclass
class Received:
    """What one recvmsg returned; owns the descriptors in `groups` until close()."""

    data: bytes = b""
    flags: int = 0
    groups: list = field(default_factory=list)  # one list of fds per SCM_RIGHTS cmsg, in order
    other: list = field(default_factory=list)  # (level, type, bytes) of every other cmsg
    truncated_bytes: int = 0  # trailing bytes of an SCM_RIGHTS cmsg that did not make a whole int

    @property
    def fds(self) -> list:
        return [fd for group in self.groups for fd in group]

    @property
    def ctrunc(self) -> bool:
        return bool(self.flags & getattr(socket, "MSG_CTRUNC", 0))

    def take(self) -> list:
        """Hand the descriptors to the caller, who must close them."""
        fds, self.groups = self.fds, []
        return fds

    def close(self) -> None:
        fds = []
        for group in self.groups:  # what the fds property gives, without its cost on every receive
            fds += group
        self.groups = []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Received:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse(data: bytes, ancdata, flags: int) -> Received:
    groups: list = []
    other: list = []
    truncated = 0
    try:
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                size = len(payload)
                groups.append(list(_INTS[size // INT_SIZE].unpack_from(payload)))
                truncated += size % INT_SIZE
            else:
                other.append((level, kind, payload))
    except BaseException:
        Received(groups=groups).close()
        raise
    return Received(data, flags, groups, other, truncated)  # positional: keywords make the call slower


def recv_fds(sock: socket.socket, maxfds: int, bufsize: int = 1024, flags: int = 0,
             controllen: int | None = None) -> Received:
    """One recvmsg with room for maxfds descriptors (CMSG_SPACE-sized unless controllen is given)."""
    if controllen is None:
        try:
            controllen = socket.CMSG_SPACE(maxfds * INT_SIZE)  # rights_space(maxfds), without two calls
        except (AttributeError, TypeError):
            controllen = rights_space(maxfds)  # no CMSG_SPACE here, or a bad maxfds: raises as it always did
    data, ancdata, msg_flags, _ = sock.recvmsg(bufsize, controllen, flags)
    return parse(data, ancdata, msg_flags)
