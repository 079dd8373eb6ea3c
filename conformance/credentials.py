"""Who is on the other end, and who sent this message? Each platform's own answer, behind one interface.

Connect time (the peer as it was when the connection was made):
- Linux SO_PEERCRED (struct ucred), SO_PEERGROUPS (its supplementary groups), and SO_PEERPIDFD (a pidfd of the
  peer, 6.5+; PIDFD_GET_INFO tells about its process, how it exited included);
- FreeBSD LOCAL_PEERCRED (struct xucred with cr_pid); macOS LOCAL_PEERCRED (xucred, no pid) and LOCAL_PEERPID.

Per message:
- Linux: SCM_CREDENTIALS (struct ucred), stated by the sender (checked by the kernel) or added by the kernel to
  every message when the receiver set SO_PASSCRED (or the sender did, on its own socket, when the message was sent);
  SCM_PIDFD when the receiver set SO_PASSPIDFD;
- FreeBSD: SCM_CREDS that the sender attaches (struct cmsgcred, filled in by the kernel); LOCAL_CREDS on the
  receiver (struct sockcred, one-shot on a stream, every datagram); LOCAL_CREDS_PERSISTENT (SCM_CREDS2 with
  struct sockcred2, every message);
- macOS: none (SCM_CREDS is named, but there is no struct cmsgcred and the kernel refuses it), so
  `message_mechanism()` falls back to LOCAL_PEERCRED and says so.
Where there is nothing, `CredentialsUnavailable` with the reason.

Struct layouts and constants come from the platform module (conformance/platforms/<os>.py); the decoders take
the layout as an argument so that self-tests can decode any platform's bytes on any machine.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from dataclasses import dataclass, field

from .harness.rights import cmsg_space as _space
from .platforms import constants, lookup, machine_entry
from .unavailable import Unavailable

GROUPS_ROOM = 1024  # gids of receive-buffer room for the variable-length BSD structures (FreeBSD NGROUPS_MAX 1023)


class CredentialsUnavailable(Unavailable):
    """This platform has no credential mechanism the module knows; `reason` says what is missing."""


@dataclass(frozen=True)
class Credentials:
    uid: int
    pid: int | None = None
    gid: int | None = None
    euid: int | None = None
    egid: int | None = None
    # The group list where the structure carries one (None where it has no room for groups), and whether it is the
    # whole list: a fixed array that is full may have cut it short. Not part of equality: ids say who it is.
    groups: tuple | None = field(default=None, compare=False)
    groups_complete: bool = field(default=True, compare=False)


def _need(name: str, *modules):
    value = lookup(name, *modules)
    if value is None:
        raise CredentialsUnavailable(f"{name} is not defined on {constants().NAME}")
    return value


# ---- decoders: bytes as the kernel hands them over -> Credentials ------------------------------------------------

def decode_ucred(data: bytes, layout: str) -> Credentials | None:
    """Linux struct ucred { pid, uid, gid }."""
    if len(data) < struct.calcsize(layout):
        return None
    pid, uid, gid = struct.unpack_from(layout, data)
    return Credentials(uid=uid, pid=pid, gid=gid)


def decode_cmsgcred(data: bytes, layout: str) -> Credentials | None:
    """FreeBSD struct cmsgcred { pid, uid, euid, gid, ngroups, groups[16] }; groups[0] is the egid."""
    if len(data) < struct.calcsize(layout):
        return None
    pid, uid, euid, gid, ngroups, *groups = struct.unpack_from(layout, data)
    listed, complete = _fixed_groups(groups, ngroups)
    return Credentials(uid=uid, pid=pid, gid=gid, euid=euid, egid=groups[0] if ngroups > 0 else None,
                       groups=listed, groups_complete=complete)


def decode_sockcred(data: bytes, layout: str) -> Credentials | None:
    """FreeBSD struct sockcred { uid, euid, gid, egid, ngroups, groups[] } (LOCAL_CREDS): no pid."""
    if len(data) < struct.calcsize(layout):
        return None
    uid, euid, gid, egid, ngroups = struct.unpack_from(layout, data)
    listed, complete = _trailing_groups(data, struct.calcsize(layout), ngroups)
    return Credentials(uid=uid, gid=gid, euid=euid, egid=egid, groups=listed, groups_complete=complete)


def decode_sockcred2(data: bytes, layout: str) -> Credentials | None:
    """FreeBSD struct sockcred2 { version, pid, uid, euid, gid, egid, ngroups, groups[] } (LOCAL_CREDS_PERSISTENT)."""
    if len(data) < struct.calcsize(layout):
        return None
    _version, pid, uid, euid, gid, egid, ngroups = struct.unpack_from(layout, data)
    listed, complete = _trailing_groups(data, struct.calcsize(layout), ngroups)
    return Credentials(uid=uid, pid=pid, gid=gid, euid=euid, egid=egid, groups=listed, groups_complete=complete)


def decode_xucred(data: bytes, layout: str) -> Credentials | None:
    """struct xucred { version, uid, ngroups, groups[16] [, pid on FreeBSD] }: the peer's effective ids."""
    if len(data) < struct.calcsize(layout):
        return None
    fields = struct.unpack_from(layout, data)
    _version, uid, ngroups, groups = fields[0], fields[1], fields[2], fields[3:19]
    pid = fields[19] if len(fields) > 19 else None
    listed, complete = _fixed_groups(groups, ngroups)
    return Credentials(uid=uid, euid=uid, gid=groups[0] if ngroups > 0 else None, pid=pid,
                       groups=listed, groups_complete=complete)


def _fixed_groups(slots, ngroups: int) -> tuple[tuple, bool]:
    """The groups of a fixed array (cmsgcred, xucred): the first ngroups slots; a full array may have cut the list."""
    count = max(0, min(ngroups, len(slots)))
    return tuple(slots[:count]), count < len(slots)


def _trailing_groups(data: bytes, offset: int, ngroups: int) -> tuple[tuple, bool]:
    """The gid_t array that follows a variable-length structure (sockcred, sockcred2), as far as the data goes."""
    count = max(0, min(ngroups, (len(data) - offset) // 4))
    return struct.unpack_from(f"={count}I", data, offset), count == ngroups


def decode_scm_creds(data: bytes) -> tuple[str, Credentials | None]:
    """A BSD SCM_CREDS message carries either struct sockcred (the receiver's LOCAL_CREDS) or struct cmsgcred (what
    a sender attached): which one, told by its exact size ("sockcred", "cmsgcred", or "unknown"), and its contents.
    The sizes coincide only for a sockcred of 16 groups and a cmsgcred whose array is full, read as sockcred."""
    c = constants()
    if c.SOCKCRED_FORMAT and len(data) >= struct.calcsize(c.SOCKCRED_FORMAT):
        fixed = struct.calcsize(c.SOCKCRED_FORMAT)
        ngroups = struct.unpack_from(c.SOCKCRED_FORMAT, data)[-1]
        if ngroups >= 0 and len(data) == fixed + 4 * ngroups:
            return "sockcred", decode_sockcred(data, c.SOCKCRED_FORMAT)
    if c.CMSGCRED_FORMAT and len(data) == struct.calcsize(c.CMSGCRED_FORMAT):
        return "cmsgcred", decode_cmsgcred(data, c.CMSGCRED_FORMAT)
    return "unknown", None


# ---- connect time -------------------------------------------------------------------------------------------------

def peer_credentials(sock: socket.socket) -> Credentials:
    """The peer's credentials as recorded at connect (or socketpair) time.

    OSError from the kernel is raised as is (ENOTCONN, EINVAL: the cases observe it); CredentialsUnavailable
    where the platform has no such option.
    """
    c = constants()
    peercred = lookup("SO_PEERCRED", socket)
    if peercred is not None and c.UCRED_FORMAT:
        raw = sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize(c.UCRED_FORMAT))
        return decode_ucred(raw, c.UCRED_FORMAT)
    local = lookup("LOCAL_PEERCRED", socket)
    if local is not None and c.SOL_LOCAL is not None and c.XUCRED_FORMAT:
        raw = sock.getsockopt(c.SOL_LOCAL, local, struct.calcsize(c.XUCRED_FORMAT))
        creds = decode_xucred(raw, c.XUCRED_FORMAT)
        if creds is None:
            raise CredentialsUnavailable(f"LOCAL_PEERCRED returned {len(raw)} bytes, not a struct xucred")
        return creds
    raise CredentialsUnavailable(f"no connect-time credentials on {c.NAME}: neither SO_PEERCRED nor LOCAL_PEERCRED")


def peer_pid(sock: socket.socket) -> int:
    """macOS LOCAL_PEERPID: the pid of the process that last used the peer socket."""
    option = _need("LOCAL_PEERPID", socket)
    return struct.unpack("=i", sock.getsockopt(constants().SOL_LOCAL or 0, option, 4))[0]


def peer_pidfd(sock: socket.socket) -> int:
    """Linux SO_PEERPIDFD: a new pidfd for the peer; the caller closes it."""
    return sock.getsockopt(socket.SOL_SOCKET, _need("SO_PEERPIDFD", socket))


def peer_groups(sock: socket.socket) -> tuple[tuple, bool]:
    """The peer's supplementary groups as recorded at connect time, and whether that is the whole list.

    Linux SO_PEERGROUPS (4.13+: gid_t[], without the egid unless it is a member) where the platform has it, else the
    groups of the BSD struct xucred (cr_groups, whose first entry has been the egid). Up to 256 groups: CPython's
    getsockopt takes a buffer of at most 1024 bytes (a peer with more is ERANGE, raised as is).
    """
    option = machine_entry(constants().SO_PEERGROUPS_BY_MACHINE)
    option = getattr(socket, "SO_PEERGROUPS", option)
    if option is not None:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, option, 1024)
        except OSError as e:
            if e.errno == getattr(errno, "ENOPROTOOPT", None):
                raise CredentialsUnavailable("SO_PEERGROUPS is refused here (ENOPROTOOPT)") from e
            raise
        return struct.unpack(f"={len(raw) // 4}I", raw[: len(raw) // 4 * 4]), True
    seen = peer_credentials(sock)
    if seen.groups is None:
        raise CredentialsUnavailable(f"the connect-time credentials of {constants().NAME} carry no groups")
    return seen.groups, seen.groups_complete


def pidfd_pid(fd: int) -> int | None:
    """The pid a pidfd refers to (-1 once that process is reaped), from its fdinfo; None if not shown."""
    template = constants().PIDFD_FDINFO
    if template is None:
        raise CredentialsUnavailable(f"no way to read a pidfd's pid on {constants().NAME}")
    with open(template.format(fd=fd)) as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    return None


def ioctl_request(direction: str, kind: int, number: int, size: int, machine: str | None = None) -> int:
    """An ioctl request number as the kernel's _IOC(dir, type, nr, size) makes it on this machine's architecture:
    direction "" (_IO), "r" (_IOR), "w" (_IOW) or "rw" (_IOWR). The bit layout and direction values differ between
    architectures (platforms: IOC_ENCODING)."""
    encoding = machine_entry(constants().IOC_ENCODING, machine)
    if encoding is None:
        raise CredentialsUnavailable(f"no ioctl encoding known on {constants().NAME}")
    size_bits, read, write, none = encoding
    bits = (read if "r" in direction else 0) | (write if "w" in direction else 0) or none
    if size >= 1 << size_bits:
        raise ValueError(f"an ioctl argument of {size} bytes does not fit in {size_bits} bits")
    return bits << (16 + size_bits) | size << 16 | kind << 8 | number


@dataclass(frozen=True)
class PidfdInfo:
    """What ioctl(PIDFD_GET_INFO) told about a pidfd's process: the mask of what the kernel filled in, the pid (0
    once reaped) and, where the mask has the exit bit, the wait status it ended with."""

    mask: int
    pid: int
    exit_status: int | None


def pidfd_info(fd: int, want_exit: bool = True) -> PidfdInfo:
    """ioctl(PIDFD_GET_INFO) on a pidfd (Linux 6.13+; exit information 6.15+). OSError as the kernel gives it
    (ENOTTY/EINVAL where there is no such ioctl, ESRCH for a process reaped with nothing kept)."""
    c = constants()
    if not c.PIDFD_GET_INFO or not c.PIDFD_INFO_FORMAT or c.PIDFD_INFO_EXIT is None:
        raise CredentialsUnavailable(f"no PIDFD_GET_INFO on {c.NAME}")
    layout = struct.Struct(c.PIDFD_INFO_FORMAT)
    request = ioctl_request("rw", *c.PIDFD_GET_INFO, layout.size)
    buffer = bytearray(layout.size)
    struct.pack_into("=Q", buffer, 0, c.PIDFD_INFO_EXIT if want_exit else 0)  # mask first: what we ask for
    fcntl.ioctl(fd, request, buffer)
    fields = layout.unpack(buffer)
    mask, pid, exit_code = fields[0], fields[2], fields[-1]
    return PidfdInfo(mask=mask, pid=pid, exit_status=exit_code if mask & c.PIDFD_INFO_EXIT else None)


# ---- per message: what a sender states ---------------------------------------------------------------------------

def stated_ucred(pid: int, uid: int, gid: int) -> tuple[int, int, bytes]:
    """A Linux SCM_CREDENTIALS control message stating these ids (the kernel decides whether to believe it)."""
    c = constants()
    if not c.UCRED_FORMAT:
        raise CredentialsUnavailable(f"no struct ucred on {c.NAME}")
    return socket.SOL_SOCKET, _need("SCM_CREDENTIALS", socket), struct.pack(c.UCRED_FORMAT, pid, uid, gid)


def stated_cmsgcred(pid: int, uid: int, euid: int, gid: int) -> tuple[int, int, bytes]:
    """A BSD SCM_CREDS control message with these values filled in (FreeBSD overwrites them with the truth).

    Where the platform names SCM_CREDS but has no struct cmsgcred (macOS), there is nothing to fill in: the message
    is SCM_CREDS with no data, all that a program there can state, and only the type is put to the kernel.
    """
    c = constants()
    scm_creds = _need("SCM_CREDS", socket)
    if not c.CMSGCRED_FORMAT:
        return socket.SOL_SOCKET, scm_creds, b""
    groups = [gid] + [0] * 15
    return socket.SOL_SOCKET, scm_creds, struct.pack(c.CMSGCRED_FORMAT, pid, uid, euid, gid, 1, *groups)


# ---- per message: mechanisms ----------------------------------------------------------------------------------

class Mechanism:
    """How one platform attaches and reads a message's credentials."""

    name = ""
    per_message = True  # False: the answer describes the peer at connect time, not the message's sender
    has_pid = True
    carries_groups = True  # False: the structure has no room for the sender's groups

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
    """Linux: SO_PASSCRED on the receiver; every message then carries SCM_CREDENTIALS."""

    name = "SCM_CREDENTIALS"
    carries_groups = False  # struct ucred is pid, uid, gid

    def __init__(self, passcred: int, scm: int, layout: str) -> None:
        self.passcred, self.scm, self.layout = passcred, scm, layout

    def prepare_receiver(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, self.passcred, 1)

    def prepare_sender(self, sock: socket.socket) -> None:
        # SO_PASSCRED on the sending socket too: the kernel records the sender's credentials on what it sends "if
        # source or destination socket asserted SOCK_PASSCRED" (net/unix/af_unix.c unix_maybe_add_creds).
        sock.setsockopt(socket.SOL_SOCKET, self.passcred, 1)

    def sender_cmsgs(self) -> list:
        # As the seed's Figure 24: the sender states pid, euid and egid; the kernel refuses a lie (EPERM).
        return [stated_ucred(os.getpid(), os.geteuid(), os.getegid())]

    def control_space(self) -> int:
        return _space(struct.calcsize(self.layout))

    def read(self, sock, other_cmsgs) -> Credentials | None:
        for level, kind, data in other_cmsgs:
            if level == socket.SOL_SOCKET and kind == self.scm:
                creds = decode_ucred(data, self.layout)
                if creds is not None and creds.pid == 0:
                    # Queued before the receiver set SO_PASSCRED, with none attached: Linux reports pid 0 and
                    # the overflow uid (65534), which would be a wrong answer, not a sender's identity.
                    return None
                return creds
        return None


class _ScmCreds(Mechanism):
    """FreeBSD: the sender attaches an empty struct cmsgcred and the kernel fills it in."""

    name = "SCM_CREDS"

    def __init__(self, scm: int, layout: str) -> None:
        self.scm, self.layout = scm, layout

    def sender_cmsgs(self) -> list:
        return [(socket.SOL_SOCKET, self.scm, bytes(struct.calcsize(self.layout)))]

    def control_space(self) -> int:
        return _space(struct.calcsize(self.layout))

    def read(self, sock, other_cmsgs) -> Credentials | None:
        for level, kind, data in other_cmsgs:
            if level == socket.SOL_SOCKET and kind == self.scm:
                return decode_cmsgcred(data, self.layout)
        return None


class _LocalCreds(Mechanism):
    """FreeBSD: LOCAL_CREDS (sockcred, no pid) or LOCAL_CREDS_PERSISTENT (sockcred2) set on the receiver."""

    def __init__(self, option_name: str, option: int, level: int, scm: int, layout: str, persistent: bool) -> None:
        self.name, self.option, self.level, self.scm, self.layout = option_name, option, level, scm, layout
        self.has_pid = persistent
        self.decode = decode_sockcred2 if persistent else decode_sockcred

    def prepare_receiver(self, sock: socket.socket) -> None:
        sock.setsockopt(self.level, self.option, 1)

    def control_space(self) -> int:
        return _space(struct.calcsize(self.layout) + 4 * GROUPS_ROOM)

    def read(self, sock, other_cmsgs) -> Credentials | None:
        for level, kind, data in other_cmsgs:
            if level == socket.SOL_SOCKET and kind == self.scm:
                return self.decode(data, self.layout)
        return None


class _LocalPeercred(Mechanism):
    """macOS: no credentials per message; the connect-time LOCAL_PEERCRED is the best answer there is."""

    name = "LOCAL_PEERCRED"
    per_message = False
    has_pid = False

    def read(self, sock, other_cmsgs) -> Credentials | None:
        try:
            return peer_credentials(sock)
        except OSError as e:  # datagram and unconnected sockets have no connect-time peer (EINVAL, ENOTCONN)
            raise CredentialsUnavailable(f"{self.name} on this socket: {os.strerror(e.errno or 0)}") from e


def message_mechanism() -> Mechanism:
    """The mechanism a sender can use on its own (the seed's recv_ufd): per message where the platform has one,
    else the connect-time LOCAL_PEERCRED; CredentialsUnavailable if neither."""
    c = constants()
    passcred, scm_credentials = lookup("SO_PASSCRED", socket), lookup("SCM_CREDENTIALS", socket)
    if passcred is not None and scm_credentials is not None and c.UCRED_FORMAT:
        return _ScmCredentials(passcred, scm_credentials, c.UCRED_FORMAT)
    scm_creds = lookup("SCM_CREDS", socket)
    if scm_creds is not None and c.CMSGCRED_FORMAT:
        return _ScmCreds(scm_creds, c.CMSGCRED_FORMAT)
    if lookup("LOCAL_PEERCRED", socket) is not None and c.SOL_LOCAL is not None and c.XUCRED_FORMAT:
        return _LocalPeercred()
    raise CredentialsUnavailable(
        f"no credential mechanism known on {c.NAME}: neither SO_PASSCRED/SCM_CREDENTIALS, "
        "SCM_CREDS with struct cmsgcred, nor LOCAL_PEERCRED with struct xucred")


def sender_requested_mechanism() -> Mechanism:
    """The sender asks, on its own socket, that the kernel record its credentials on what it sends, so that a
    receiver that asks only later still learns who sent it (Linux SO_PASSCRED on the sender: prepare_sender).
    Where credentials are added by the receiver's request alone there is no such thing: CredentialsUnavailable."""
    c = constants()
    passcred, scm_credentials = lookup("SO_PASSCRED", socket), lookup("SCM_CREDENTIALS", socket)
    if passcred is None or scm_credentials is None or not c.UCRED_FORMAT:
        raise CredentialsUnavailable(f"no sender-side request for credentials (SO_PASSCRED) on {c.NAME}")
    return _ScmCredentials(passcred, scm_credentials, c.UCRED_FORMAT)


def requested_mechanism(persistent: bool = True) -> Mechanism:
    """The receiver asks and the kernel attaches credentials to messages the sender sent bare.

    persistent=True: on every message (Linux SO_PASSCRED, FreeBSD LOCAL_CREDS_PERSISTENT);
    persistent=False: FreeBSD LOCAL_CREDS (one-shot on a stream, every datagram).
    """
    c = constants()
    if persistent:
        passcred, scm_credentials = lookup("SO_PASSCRED", socket), lookup("SCM_CREDENTIALS", socket)
        if passcred is not None and scm_credentials is not None and c.UCRED_FORMAT:
            return _ScmCredentials(passcred, scm_credentials, c.UCRED_FORMAT)
    name, scm_name, layout = (("LOCAL_CREDS_PERSISTENT", "SCM_CREDS2", c.SOCKCRED2_FORMAT) if persistent
                              else ("LOCAL_CREDS", "SCM_CREDS", c.SOCKCRED_FORMAT))
    option, scm = lookup(name, socket), lookup(scm_name, socket)
    if option is None or scm is None or not layout or c.SOL_LOCAL is None:
        wanted = "SO_PASSCRED or LOCAL_CREDS_PERSISTENT" if persistent else "LOCAL_CREDS"
        raise CredentialsUnavailable(f"no receiver-requested credentials ({wanted}) on {c.NAME}")
    return _LocalCreds(name, option, c.SOL_LOCAL, scm, layout, persistent)


# ---- SCM_PIDFD ---------------------------------------------------------------------------------------------------

def enable_pidfds(sock: socket.socket) -> None:
    """Linux SO_PASSPIDFD: every message received on sock carries an SCM_PIDFD of its sender."""
    sock.setsockopt(socket.SOL_SOCKET, _need("SO_PASSPIDFD", socket), 1)


def take_pidfds(other_cmsgs) -> tuple[list, list]:
    """The pidfds in a message's control data, and the errors that stand in their place.

    The descriptors are installed: the caller closes them. A negative value is no descriptor but the error
    the kernel met making one (scm_pidfd_recv passes pidfd_prepare's failure on as the value, e.g. -EINVAL
    for a sender already reaped before 6.16's pidfds of reaped tasks); it is returned as a positive errno.
    """
    scm = lookup("SCM_PIDFD", socket)
    fds, errors = [], []
    for level, kind, data in other_cmsgs:
        if level == socket.SOL_SOCKET and kind == scm and len(data) >= 4:
            value = struct.unpack_from("=i", data)[0]
            if value < 0:
                errors.append(-value)
            else:
                fds.append(value)
    return fds, errors
