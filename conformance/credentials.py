"""Who sent this message? Each platform's own answer, behind one interface.

- Linux: the receiver sets SO_PASSCRED and every message carries SCM_CREDENTIALS (struct ucred); a sender may
  also attach its own, which the kernel checks.
- FreeBSD: the sender attaches SCM_CREDS with an empty struct cmsgcred and the kernel fills it in.
- macOS: no per-message credentials (SCM_CREDS is refused); the best available answer is the peer's
  credentials at connect time, LOCAL_PEERCRED (struct xucred), which is *not* per message.
- elsewhere: `CredentialsUnavailable`, with the reason.

Struct layouts and constants come from the platform module (conformance/platforms/<os>.py).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from .platforms import constants
from .platforms.probes import lookup


class CredentialsUnavailable(Exception):
    """This platform has no mechanism the module knows; `reason` says what is missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    uid: int
    pid: int | None = None
    gid: int | None = None
    euid: int | None = None


def _space(nbytes: int) -> int:
    space = getattr(socket, "CMSG_SPACE", None)
    if space is not None:
        return space(nbytes)
    align = constants().CMSG_ALIGNMENT or 8
    return (12 + align - 1) // align * align + (nbytes + align - 1) // align * align


class Mechanism:
    """How one platform attaches and reads a message's credentials."""

    name = ""
    per_message = True  # False: the answer describes the peer at connect time, not the message's sender

    def prepare_receiver(self, sock: socket.socket) -> None:
        """Whatever the receiver must set before the message is sent."""

    def sender_cmsgs(self) -> list:
        """Control messages a sender adds to state its credentials (empty where the kernel adds them)."""
        return []

    def control_space(self) -> int:
        """Receive-buffer room for the credentials control message."""
        return 0

    def read(self, sock: socket.socket, other_cmsgs) -> Credentials | None:
        """The credentials of a received message, from its non-rights control messages; None if absent."""
        raise NotImplementedError


class _ScmCredentials(Mechanism):
    name = "SCM_CREDENTIALS"

    def __init__(self, passcred: int, scm: int, layout: str) -> None:
        self.passcred, self.scm, self.layout = passcred, scm, layout

    def prepare_receiver(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, self.passcred, 1)

    def sender_cmsgs(self) -> list:
        # As the seed's Figure 24: the sender states pid, euid and egid; the kernel refuses a lie (EPERM).
        return [(socket.SOL_SOCKET, self.scm, struct.pack(self.layout, os.getpid(), os.geteuid(), os.getegid()))]

    def control_space(self) -> int:
        return _space(struct.calcsize(self.layout))

    def read(self, sock, other_cmsgs) -> Credentials | None:
        for level, kind, data in other_cmsgs:
            if level == socket.SOL_SOCKET and kind == self.scm and len(data) >= struct.calcsize(self.layout):
                pid, uid, gid = struct.unpack_from(self.layout, data)
                if pid == 0:
                    # Queued before the receiver set SO_PASSCRED, with none attached: Linux reports pid 0 and
                    # the overflow uid (65534), which would be a wrong answer, not a sender's identity.
                    return None
                return Credentials(uid=uid, pid=pid, gid=gid)
        return None


class _ScmCreds(Mechanism):
    name = "SCM_CREDS"

    def __init__(self, scm: int, layout: str) -> None:
        self.scm, self.layout = scm, layout

    def sender_cmsgs(self) -> list:
        # An empty struct cmsgcred: the kernel overwrites it with the sender's real identity.
        return [(socket.SOL_SOCKET, self.scm, bytes(struct.calcsize(self.layout)))]

    def control_space(self) -> int:
        return _space(struct.calcsize(self.layout))

    def read(self, sock, other_cmsgs) -> Credentials | None:
        for level, kind, data in other_cmsgs:
            if level == socket.SOL_SOCKET and kind == self.scm and len(data) >= struct.calcsize(self.layout):
                pid, uid, euid, gid = struct.unpack_from(self.layout, data)[:4]
                return Credentials(uid=uid, pid=pid, gid=gid, euid=euid)
        return None


class _LocalPeercred(Mechanism):
    name = "LOCAL_PEERCRED"
    per_message = False

    def __init__(self, level: int, option: int, layout: str) -> None:
        self.level, self.option, self.layout = level, option, layout

    def read(self, sock, other_cmsgs) -> Credentials | None:
        size = struct.calcsize(self.layout)
        try:
            raw = sock.getsockopt(self.level, self.option, size)
        except OSError as e:  # datagram and unconnected sockets have no connect-time peer (EINVAL, ENOTCONN)
            raise CredentialsUnavailable(f"{self.name} on this socket: {os.strerror(e.errno or 0)}") from e
        if len(raw) < size:
            return None
        fields = struct.unpack(self.layout, raw)
        _version, uid, ngroups, groups = fields[0], fields[1], fields[2], fields[3:19]
        pid = fields[19] if len(fields) > 19 else None  # FreeBSD's xucred has cr_pid; macOS's does not
        return Credentials(uid=uid, euid=uid, gid=groups[0] if ngroups > 0 else None, pid=pid)


def message_mechanism() -> Mechanism:
    """The platform's per-message mechanism, else its connect-time one; CredentialsUnavailable if neither."""
    c = constants()
    passcred, scm_credentials = lookup("SO_PASSCRED", socket), lookup("SCM_CREDENTIALS", socket)
    if passcred is not None and scm_credentials is not None and c.UCRED_FORMAT:
        return _ScmCredentials(passcred, scm_credentials, c.UCRED_FORMAT)
    scm_creds = lookup("SCM_CREDS", socket)
    if scm_creds is not None and c.CMSGCRED_FORMAT:
        return _ScmCreds(scm_creds, c.CMSGCRED_FORMAT)
    peercred = lookup("LOCAL_PEERCRED", socket)
    if peercred is not None and c.SOL_LOCAL is not None and c.XUCRED_FORMAT:
        return _LocalPeercred(c.SOL_LOCAL, peercred, c.XUCRED_FORMAT)
    raise CredentialsUnavailable(
        f"no credential mechanism known on {c.NAME}: neither SO_PASSCRED/SCM_CREDENTIALS, "
        "SCM_CREDS with struct cmsgcred, nor LOCAL_PEERCRED with struct xucred")
