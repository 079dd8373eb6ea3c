"""Self-tests of conformance.credentials with each OS's constants simulated: the right mechanism is chosen,
crafted credential structures decode, and a platform without a mechanism gives CredentialsUnavailable, never a
crash. The real mechanism of this machine is exercised by the protocol cases."""

from __future__ import annotations

import errno
import os
import socket
import struct

import pytest

from conformance import apue, credentials
from conformance.credentials import (
    Credentials,
    CredentialsUnavailable,
    decode_sockcred,
    decode_sockcred2,
    message_mechanism,
    peer_credentials,
    requested_mechanism,
    stated_cmsgcred,
)
from conformance.platforms import constants

LINUX_ONLY_NAMES = ("SO_PASSCRED", "SCM_CREDENTIALS", "SO_PEERCRED")
BSD_NAMES = ("SCM_CREDS", "LOCAL_PEERCRED")


@pytest.fixture
def simulate(monkeypatch):
    """simulate(os): credentials.py sees that OS's constants and only the socket names Python has there."""

    def apply(os_name: str) -> None:
        monkeypatch.setattr(credentials, "constants", lambda: constants(os_name))
        monkeypatch.setattr("conformance.platforms.constants", lambda name=None: constants(os_name))
        if os_name != "linux":
            for name in LINUX_ONLY_NAMES:
                monkeypatch.delattr(socket, name, raising=False)
        for name in BSD_NAMES:
            monkeypatch.delattr(socket, name, raising=False)

    return apply


def test_linux_uses_scm_credentials(simulate):
    simulate("linux")
    mechanism = message_mechanism()
    assert (mechanism.name, mechanism.per_message) == ("SCM_CREDENTIALS", True)
    [(level, kind, data)] = mechanism.sender_cmsgs()
    assert (level, kind) == (socket.SOL_SOCKET, 2)
    assert struct.unpack("=iII", data) == (os.getpid(), os.geteuid(), os.getegid())
    assert mechanism.read(None, [(socket.SOL_SOCKET, 2, struct.pack("=iII", 42, 7, 8))]) == \
        Credentials(uid=7, pid=42, gid=8)
    assert mechanism.read(None, []) is None
    # pid 0 is what Linux reports for a message queued before SO_PASSCRED was set: no identity at all
    assert mechanism.read(None, [(socket.SOL_SOCKET, 2, struct.pack("=iII", 0, 65534, 65534))]) is None


def test_freebsd_uses_scm_creds_with_an_empty_cmsgcred(simulate):
    simulate("freebsd")
    mechanism = message_mechanism()
    assert (mechanism.name, mechanism.per_message) == ("SCM_CREDS", True)
    [(level, kind, data)] = mechanism.sender_cmsgs()
    assert (level, kind, data) == (socket.SOL_SOCKET, 3, bytes(84))
    # struct cmsgcred as the kernel fills it: pid, uid, euid, gid, ngroups, groups[16]
    filled = struct.pack("=iIIIh2x16I", 4321, 1001, 0, 20, 2, *([20, 5] + [0] * 14))
    assert mechanism.read(None, [(socket.SOL_SOCKET, 3, filled)]) == \
        Credentials(uid=1001, pid=4321, gid=20, euid=0, egid=20)
    assert mechanism.read(None, [(socket.SOL_SOCKET, 3, filled[:40])]) is None, "a short cmsgcred was decoded"


class FakePeerSocket:
    """Answers getsockopt with crafted bytes (or an errno), as a BSD kernel would for LOCAL_PEERCRED."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.asked = None

    def getsockopt(self, level, option, size):
        self.asked = (level, option, size)
        if isinstance(self.answer, int):
            raise OSError(self.answer, os.strerror(self.answer))
        return self.answer


def test_macos_falls_back_to_local_peercred_which_is_not_per_message(simulate):
    simulate("darwin")
    mechanism = message_mechanism()
    assert (mechanism.name, mechanism.per_message) == ("LOCAL_PEERCRED", False)
    assert mechanism.sender_cmsgs() == [], "macOS refuses SCM_CREDS: nothing may be attached"
    xucred = struct.pack("=IIh2x16I", 0, 501, 1, *([20] + [0] * 15))
    sock = FakePeerSocket(xucred)
    assert mechanism.read(sock, []) == Credentials(uid=501, euid=501, gid=20)
    assert sock.asked == (0, 1, 76)
    with pytest.raises(CredentialsUnavailable, match="LOCAL_PEERCRED"):
        mechanism.read(FakePeerSocket(errno.EINVAL), [])


def test_freebsd_xucred_layout_carries_the_pid():
    layout = constants("freebsd").XUCRED_FORMAT
    assert struct.calcsize(layout) == 88
    raw = struct.pack(layout, 0, 1001, 1, *([20] + [0] * 15), 777)
    assert struct.unpack(layout, raw)[19] == 777


@pytest.mark.parametrize("os_name", ["illumos", "generic"])
def test_no_mechanism_is_credentials_unavailable_not_a_crash(simulate, os_name):
    simulate(os_name)
    with pytest.raises(CredentialsUnavailable) as info:
        message_mechanism()
    assert os_name in info.value.reason


def test_recv_ufd_without_a_mechanism_closes_what_it_received(simulate, tmp_path):
    """A descriptor already received when credentials turn out to be unavailable is closed, not leaked."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    try:
        apue.send_fd(a, w)
        os.close(w)
        w = -1
        simulate("darwin")  # LOCAL_PEERCRED is level 0, option 1: this Linux answers it with an error
        with pytest.raises(CredentialsUnavailable):
            apue.recv_ufd(b, None)
        assert os.read(r, 1) == b"", "the received write end of the pipe is still open"
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
        a.close()
        b.close()


def test_freebsd_receiver_requested_credentials(simulate, monkeypatch):
    simulate("freebsd")
    for name, value in (("LOCAL_CREDS", 2), ("LOCAL_CREDS_PERSISTENT", 3), ("SCM_CREDS2", 8), ("SCM_CREDS", 3)):
        monkeypatch.setattr(socket, name, value, raising=False)  # CPython exports these on FreeBSD
    persistent = requested_mechanism(persistent=True)
    assert (persistent.name, persistent.option, persistent.level, persistent.scm) == ("LOCAL_CREDS_PERSISTENT", 3, 0, 8)
    one_shot = requested_mechanism(persistent=False)
    assert (one_shot.name, one_shot.option, one_shot.scm, one_shot.has_pid) == ("LOCAL_CREDS", 2, 3, False)
    # struct sockcred2 { version, pid, uid, euid, gid, egid, ngroups, groups[] } with two groups
    sockcred2 = struct.pack("=iiIIIIi2I", 0, 99, 1001, 1002, 20, 21, 2, 21, 5)
    assert persistent.read(None, [(socket.SOL_SOCKET, 8, sockcred2)]) == \
        Credentials(uid=1001, pid=99, gid=20, euid=1002, egid=21)
    sockcred = struct.pack("=IIIIiI", 1001, 1002, 20, 21, 1, 21)
    assert one_shot.read(None, [(socket.SOL_SOCKET, 3, sockcred)]) == Credentials(uid=1001, gid=20, euid=1002, egid=21)


def test_decoders_refuse_short_data():
    assert decode_sockcred(b"\0" * 19, "=IIIIi") is None
    assert decode_sockcred2(b"\0" * 27, "=iiIIIIi") is None


@pytest.mark.parametrize("os_name", ["darwin", "illumos", "generic"])
def test_no_receiver_requested_credentials_is_unavailable(simulate, os_name):
    simulate(os_name)
    with pytest.raises(CredentialsUnavailable, match="no receiver-requested credentials"):
        requested_mechanism()


def test_peer_credentials_on_simulated_bsds(simulate, monkeypatch):
    simulate("freebsd")
    monkeypatch.setattr(socket, "LOCAL_PEERCRED", 1, raising=False)
    xucred = struct.pack("=IIh2x16I4xi4x", 0, 1001, 1, *([20] + [0] * 15), 4242)
    sock = FakePeerSocket(xucred)
    assert peer_credentials(sock) == Credentials(uid=1001, euid=1001, gid=20, pid=4242)
    assert sock.asked == (0, 1, 88)
    with pytest.raises(OSError):
        peer_credentials(FakePeerSocket(errno.ENOTCONN))  # the kernel's errno reaches the case as is


def test_stated_cmsgcred_packs_the_forged_values(simulate, monkeypatch):
    simulate("freebsd")
    monkeypatch.setattr(socket, "SCM_CREDS", 3, raising=False)
    level, kind, data = stated_cmsgcred(1, 0, 0, 0)
    assert (level, kind, len(data)) == (socket.SOL_SOCKET, 3, 84)
    assert struct.unpack("=iIIIh2x16I", data)[:5] == (1, 0, 0, 0, 1)


def test_macos_states_scm_creds_with_no_struct_to_fill(simulate, monkeypatch):
    simulate("darwin")  # XNU has SCM_CREDS but no struct cmsgcred: nothing is borrowed from another OS
    monkeypatch.setattr(socket, "SCM_CREDS", 3, raising=False)
    assert stated_cmsgcred(1, 0, 0, 0) == (socket.SOL_SOCKET, 3, b"")


def test_stating_bsd_credentials_without_scm_creds_is_unavailable(simulate):
    simulate("illumos")
    with pytest.raises(CredentialsUnavailable, match="SCM_CREDS"):
        stated_cmsgcred(1, 0, 0, 0)


@pytest.mark.skipif(constants().NAME != "linux", reason="SCM_PIDFD is Linux's")
def test_take_pidfds_separates_an_error_the_kernel_put_in_place_of_a_pidfd():
    # Before pidfds of reaped tasks, the kernel wrote -EINVAL where the pidfd of an exited sender would be.
    scm = credentials.lookup("SCM_PIDFD", socket)
    other = [(socket.SOL_SOCKET, scm, struct.pack("=i", -errno.EINVAL)),
             (socket.SOL_SOCKET, scm, struct.pack("=i", 7)),
             (socket.SOL_SOCKET, scm + 1, struct.pack("=i", 9))]
    assert credentials.take_pidfds(other) == ([7], [errno.EINVAL])
