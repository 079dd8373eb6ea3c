"""Credential passing, each platform's own way, and the proof that it cannot be forged.

Mechanisms come from conformance.credentials (Linux SO_PEERCRED, SCM_CREDENTIALS, SO_PASSCRED, SO_PASSPIDFD,
SO_PEERPIDFD; FreeBSD LOCAL_PEERCRED, SCM_CREDS, LOCAL_CREDS, LOCAL_CREDS_PERSISTENT; macOS LOCAL_PEERCRED,
LOCAL_PEERPID). A mechanism the platform lacks makes the case `unsupported` with the reason. Run as root, the
sender runs as `nobody` (65534) in a child, so the receiver must tell it apart from itself by uid as well as pid.

Anchors: APUE 3e Figures 17.13/17.14 (seed 000: credentials over UNIX domain sockets), unix(7), FreeBSD unix(4)
and tools/regression/sockets/unix_cmsg, Linux tools/testing/selftests/net/af_unix/scm_pidfd.c, LTP getsockopt02.
"""

from __future__ import annotations

import errno
import os
import socket

import pytest

from conformance import credentials as creds
from conformance.harness import rights
from conformance.harness.barriers import Event
from conformance.harness.children import Child
from conformance.harness.deadlines import DEFAULT_DEADLINE, deadline
from conformance.harness.privileges import NOBODY, drop_privileges
from conformance.outcomes import Unsupported
from conformance.platforms import constants

from ._support import data_file, errno_name, free_pid, nothing_queued, or_unsupported, same_file
from .conftest import require, unix_socketpair

SEED = "APUE 3e 17.4 Figures 17.13/17.14 (seed 000: Sending/Receiving credentials over UNIX domain sockets)"
UNIX7 = "Linux unix(7): SO_PASSCRED, SCM_CREDENTIALS, SO_PEERCRED"
UNIX4 = "FreeBSD unix(4): LOCAL_PEERCRED, LOCAL_CREDS, LOCAL_CREDS_PERSISTENT, SCM_CREDS"
UNIX_CMSG = "FreeBSD tools/regression/sockets/unix_cmsg"
SCM_PIDFD = "Linux tools/testing/selftests/net/af_unix/scm_pidfd.c"
KINDS = ["stream", "dgram"]


def _as_sender() -> dict:
    """In a child: become an unprivileged sender if we are root; the ids the receiver must see."""
    drop_privileges(NOBODY)
    return {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}


def _receive(sock: socket.socket, mechanism: creds.Mechanism, bufsize: int = 64) -> tuple:
    """One recvmsg with room for the mechanism's credentials and a few descriptors: (Received, Credentials)."""
    data, ancdata, flags, _ = sock.recvmsg(bufsize, mechanism.control_space() + rights.rights_space(4))
    got = rights.parse(data, ancdata, flags)
    try:
        return got, mechanism.read(sock, got.other)
    except BaseException:
        got.close()
        raise


def _assert_names(seen: creds.Credentials | None, sender: dict, mechanism: creds.Mechanism) -> None:
    assert seen is not None, f"the message carried no {mechanism.name} credentials"
    if mechanism.has_pid:
        assert seen.pid == sender["pid"], f"pid {seen.pid} seen, the sender is {sender['pid']} (we are {os.getpid()})"
    assert seen.uid == sender["uid"], f"uid {seen.uid} seen, the sender's is {sender['uid']}"
    if seen.gid is not None:
        assert seen.gid == sender["gid"], f"gid {seen.gid} seen, the sender's is {sender['gid']}"


# ---- per message: the receiver sees the true sender --------------------------------------------------------------

def _send_as_child(sock, cmsgs_of) -> dict:
    who = _as_sender()
    sock.sendmsg([b"who"], cmsgs_of())  # stated after the drop: the child's own ids
    return who


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.parametrize("how", ["sender_attached", "receiver_requested"])
@pytest.mark.refs(SEED, UNIX7, UNIX4, f"{UNIX_CMSG}: t_cmsgcred, t_sockcred2")
def test_receiver_sees_the_identity_of_the_sending_child(pair, how, observe):
    a, b = pair
    if how == "sender_attached":
        mechanism = or_unsupported(creds.message_mechanism)
        if not mechanism.per_message:
            raise Unsupported(f"no credentials a sender can attach here ({mechanism.name} is connect-time only)")
    else:
        mechanism = or_unsupported(creds.requested_mechanism, True)
    observe("mechanism", mechanism.name)
    mechanism.prepare_receiver(b)
    cmsgs_of = mechanism.sender_cmsgs if how == "sender_attached" else list
    with Child(_send_as_child, a, cmsgs_of) as child:
        sender = child.join()  # a failed send is the child's exception, raised here
    got, seen = _receive(b, mechanism)
    got.close()
    assert got.data == b"who"
    _assert_names(seen, sender, mechanism)


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(UNIX7 + " (SO_PASSCRED: credentials on every message)", UNIX4 + " (LOCAL_CREDS_PERSISTENT)",
                  f"{UNIX_CMSG}: t_sockcred2")
def test_every_message_carries_credentials_when_the_receiver_asks(pair, observe):
    a, b = pair
    mechanism = or_unsupported(creds.requested_mechanism, True)
    mechanism.prepare_receiver(b)
    me = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
    for i in range(3):
        a.send(b"bare %d" % i)  # no control data at all
        got, seen = _receive(b, mechanism)
        got.close()
        assert got.data == b"bare %d" % i
        assert seen is not None, f"message {i} arrived without credentials"
        _assert_names(seen, me, mechanism)


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(UNIX7 + " (SO_PASSCRED set after the message was queued)", "Linux net/core/scm.c scm_recv")
def test_credentials_of_a_message_queued_before_the_receiver_asked(pair, observe):
    a, b = pair
    mechanism = or_unsupported(creds.requested_mechanism, True)
    a.send(b"early")  # queued before the receiver asks for credentials
    mechanism.prepare_receiver(b)
    data, ancdata, flags, _ = b.recvmsg(64, mechanism.control_space() + rights.rights_space(4))
    with rights.parse(data, ancdata, flags) as got:
        raw = [d for level, kind, d in got.other if level == socket.SOL_SOCKET]
        seen = mechanism.read(b, got.other)  # None also for Linux's placeholder (pid 0, overflow uid)
    assert data == b"early"
    if seen is not None:
        observe("queued_before_request", "true_sender")
        assert seen.uid == os.getuid() and seen.pid in (None, os.getpid()), f"credentials {seen} name another process"
    else:
        observe("queued_before_request", "placeholder" if raw else "none")


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(UNIX4 + " (LOCAL_CREDS: once on a stream, every datagram)", f"{UNIX_CMSG}: t_sockcred_1/2")
def test_local_creds_is_one_shot_on_a_stream_and_per_datagram(pair, socktype, observe):
    a, b = pair
    mechanism = or_unsupported(creds.requested_mechanism, False)
    mechanism.prepare_receiver(b)
    carried = []
    for i in range(2):
        a.send(b"m%d" % i)
        got, seen = _receive(b, mechanism)
        got.close()
        carried.append(seen is not None)
    observe("messages_with_credentials", sum(carried))
    expected = [True, False] if socktype == "stream" else [True, True]
    assert carried == expected, f"credentials on messages {carried}, LOCAL_CREDS promises {expected}"


@pytest.mark.parametrize("first", ["LOCAL_CREDS", "LOCAL_CREDS_PERSISTENT"])
@pytest.mark.refs(UNIX4 + " (LOCAL_CREDS and LOCAL_CREDS_PERSISTENT are mutually exclusive)",
                  "FreeBSD sys/kern/uipc_usrreq.c uipc_ctloutput")
def test_local_creds_and_local_creds_persistent_are_exclusive(first):
    names = ["LOCAL_CREDS", "LOCAL_CREDS_PERSISTENT"]
    options = {name: creds.lookup(name, socket) for name in names}
    level = constants().SOL_LOCAL
    if None in options.values() or level is None:
        raise Unsupported(f"needs both LOCAL_CREDS and LOCAL_CREDS_PERSISTENT; {constants().NAME} lacks one")
    second = names[1 - names.index(first)]
    a, b = unix_socketpair("stream")
    try:
        b.setsockopt(level, options[first], 1)
        with pytest.raises(OSError) as e:
            b.setsockopt(level, options[second], 1)
        assert e.value.errno == errno.EINVAL, f"{second} after {first}: {errno_name(e.value)}, not EINVAL"
    finally:
        a.close()
        b.close()


# ---- forging ----------------------------------------------------------------------------------------------------

def _other_than(*own: int) -> int:
    return 0 if 0 not in own else 1


def _state_as_unprivileged(sock, field: str, parent: int) -> dict:
    """Send our true ucred (must be accepted), then one with `field` forged (must be refused): outcomes."""
    drop_privileges(NOBODY)
    if os.geteuid() == 0:
        return {"skip": "the sender is still root"}
    true = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
    sock.sendmsg([b"true"], [creds.stated_ucred(true["pid"], true["uid"], true["gid"])])
    forged = dict(true)
    forged[field] = {"pid": parent, "uid": _other_than(os.getuid(), os.geteuid()),
                     "gid": _other_than(os.getgid(), os.getegid())}[field]
    try:
        sock.sendmsg([b"lie"], [creds.stated_ucred(forged["pid"], forged["uid"], forged["gid"])])
    except OSError as e:
        return {"forged": errno_name(e)}
    return {"forged": "accepted"}


@pytest.mark.parametrize("field", ["pid", "uid", "gid"])
@pytest.mark.refs(UNIX7 + ": 'the kernel checks the credentials ... EPERM'", SEED,
                  "Linux net/core/scm.c scm_check_creds")
def test_unprivileged_sender_cannot_state_another_identity(stream_pair, field, observe):
    a, b = stream_pair
    or_unsupported(creds.stated_ucred, 0, 0, 0)
    with Child(_state_as_unprivileged, a, field, os.getpid()) as child:
        outcome = child.join()
    if "skip" in outcome:
        raise Unsupported(outcome["skip"])
    observe("forged_errno", outcome["forged"])
    assert b.recv(4) == b"true", "the sender's true credentials were refused"  # 4: a stream may merge the next
    assert outcome["forged"] == "EPERM", f"a forged {field} was {outcome['forged']}, not refused with EPERM"
    assert nothing_queued(b), "the refused message was queued anyway"


def _state_pid(sock, pid: int, unprivileged: bool) -> str:
    if unprivileged:
        drop_privileges(NOBODY)
    try:
        sock.sendmsg([b"x"], [creds.stated_ucred(pid, os.getuid(), os.getgid())])
    except OSError as e:
        return errno_name(e)
    return "accepted"


@pytest.mark.parametrize("sender", ["unprivileged", "root"])
@pytest.mark.refs(UNIX7 + ": ESRCH", "Linux net/core/scm.c __scm_send: find_get_pid")
def test_a_nonexistent_pid_is_refused(stream_pair, sender, observe):
    a, b = stream_pair
    or_unsupported(creds.stated_ucred, 0, 0, 0)
    if sender == "root" and os.geteuid() != 0:
        raise Unsupported("needs root: only a privileged sender gets past the identity check to the pid lookup")
    with Child(_state_pid, a, free_pid(), sender == "unprivileged") as child:
        outcome = child.join()
    observe("nonexistent_pid_errno", outcome)
    assert outcome != "accepted", "a message stating a pid that no process has was accepted"
    assert nothing_queued(b)
    if sender == "root":
        assert outcome == "ESRCH", f"root stating a nonexistent pid: {outcome}, not ESRCH"


@pytest.mark.refs(UNIX7 + ": a privileged process may state other ids (CAP_SYS_ADMIN for the pid)",
                  "Linux net/core/scm.c scm_check_creds")
def test_root_stating_another_pid(stream_pair, observe):
    a, b = stream_pair
    or_unsupported(creds.stated_ucred, 0, 0, 0)
    if os.geteuid() != 0:
        raise Unsupported("needs root")
    mechanism = or_unsupported(creds.requested_mechanism, True)
    mechanism.prepare_receiver(b)
    other = os.getppid() or 1
    try:
        a.sendmsg([b"x"], [creds.stated_ucred(other, 0, 0)])
    except OSError as e:
        observe("root_states_pid", f"refused:{errno_name(e)}")
        assert nothing_queued(b)
        return
    got, seen = _receive(b, mechanism)
    got.close()
    assert seen is not None and seen.pid in (other, os.getpid()), f"the receiver saw pid {seen and seen.pid}"
    observe("root_states_pid", "believed" if seen.pid == other else "corrected")


def _state_bsd_lie(sock) -> dict:
    who = _as_sender()
    try:
        sock.sendmsg([b"lie"], [creds.stated_cmsgcred(pid=1, uid=0, euid=0, gid=0)])
    except OSError as e:
        who["refused"] = errno_name(e)
    return who


@pytest.mark.refs(UNIX4 + ": SCM_CREDS is filled in by the kernel", f"{UNIX_CMSG}: t_cmsgcred",
                  "XNU bsd/kern/uipc_usrreq.c unp_internalize: SCM_CREDS is EINVAL")
def test_stated_bsd_credentials_are_never_believed(stream_pair, observe):
    a, b = stream_pair
    scm_creds = creds.lookup("SCM_CREDS", socket)  # Python's name, else the platform module's number
    if scm_creds is None:
        raise Unsupported(f"SCM_CREDS is not defined on {constants().NAME}")
    with Child(_state_bsd_lie, a) as child:
        sender = child.join()
    if "refused" in sender:
        observe("forged_cmsgcred", f"refused:{sender['refused']}")
        assert nothing_queued(b)
        return
    data, ancdata, flags, _ = b.recvmsg(64, 4096)
    with rights.parse(data, ancdata, flags) as got:
        layout = constants().CMSGCRED_FORMAT
        assert layout, "SCM_CREDS was accepted, but this platform has no struct cmsgcred to check it against"
        found = [creds.decode_cmsgcred(d, layout) for level, kind, d in got.other
                 if level == socket.SOL_SOCKET and kind == scm_creds]
    assert found and found[0] is not None, "SCM_CREDS was accepted but no credentials arrived"
    seen = found[0]
    observe("forged_cmsgcred", "overwritten" if (seen.pid, seen.uid) == (sender["pid"], sender["uid"]) else "believed")
    assert (seen.pid, seen.uid) == (sender["pid"], sender["uid"]), \
        f"the receiver saw pid {seen.pid} uid {seen.uid}: the sender's forged values, not its own"


# ---- connect time ---------------------------------------------------------------------------------------------

def _listen(path: str, kind: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, getattr(socket, f"SOCK_{kind.upper()}"))
    try:
        listener.bind(path)
        os.chmod(path, 0o777)  # a sender that dropped to nobody must be able to connect
        listener.listen(1)
        listener.settimeout(DEFAULT_DEADLINE)  # a child that failed to connect must not leave accept() waiting
    except BaseException:
        listener.close()
        raise
    return listener


def _accept(listener: socket.socket, child: Child) -> socket.socket:
    """The child's connection; if it never comes, the child's own exception says why."""
    try:
        conn, _ = listener.accept()
    except OSError:
        child.join(deadline(1.0))
        raise
    conn.settimeout(DEFAULT_DEADLINE)
    return conn


def _connect_and_wait(path: str, kind: str, go: Event, drop: bool) -> dict:
    who = _as_sender() if drop else {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}
    client = socket.socket(socket.AF_UNIX, getattr(socket, f"SOCK_{kind.upper()}"))
    client.connect(path)
    client.send(b"c")
    go.wait()  # stay alive until the parent has asked who we are
    client.close()
    return who


@pytest.mark.parametrize("kind", ["stream", "seqpacket"])
@pytest.mark.refs(UNIX7 + " SO_PEERCRED", UNIX4 + " LOCAL_PEERCRED", "LTP getsockopt02",
                  "macOS unix(4) LOCAL_PEERCRED, LOCAL_PEERPID")
def test_peer_credentials_name_the_connecting_process(socket_path, kind, observe):
    require(f"sock_{kind}")
    listener = _listen(socket_path, kind)
    try:
        with Event() as go, Child(_connect_and_wait, socket_path, kind, go, True) as child:
            conn = _accept(listener, child)
            try:
                assert conn.recv(1) == b"c"
                seen = or_unsupported(creds.peer_credentials, conn)
                pid = seen.pid
                if pid is None and creds.lookup("LOCAL_PEERPID", socket) is not None:
                    pid = creds.peer_pid(conn)
                go.set()
            finally:
                conn.close()
            sender = child.join()
    finally:
        listener.close()
    observe("pid_source", "credentials" if seen.pid is not None else ("LOCAL_PEERPID" if pid is not None else None))
    assert seen.uid == sender["uid"], f"peer uid {seen.uid}, the connecting process's is {sender['uid']}"
    if pid is not None:
        assert pid == sender["pid"], f"peer pid {pid}, the connecting process is {sender['pid']}"
    if seen.gid is not None:
        assert seen.gid == sender["gid"], f"peer gid {seen.gid}, the connecting process's is {sender['gid']}"


def _connect_and_hand_over(path: str, channel: socket.socket) -> dict:
    who = _as_sender()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    rights.send_fds(channel, [client.fileno()])
    client.close()
    return who


def _connect_then_change_uid(path: str, go: Event) -> dict:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    connected_as = os.getuid()
    drop_privileges(NOBODY)
    client.send(b"after setuid")
    go.wait()
    client.close()
    return {"pid": os.getpid(), "uid": connected_as, "now": os.getuid()}


@pytest.mark.parametrize("change", ["socket_passed_to_another_process", "peer_changes_uid"])
@pytest.mark.refs(UNIX7 + ": SO_PEERCRED gives the credentials in effect at connect()", UNIX4 + " LOCAL_PEERCRED",
                  "macOS unix(4) LOCAL_PEERPID: the last process to use the peer socket")
def test_peer_credentials_stay_those_of_the_connecting_process(socket_path, change, observe):
    require("scm_rights")
    if change == "peer_changes_uid" and os.geteuid() != 0:
        raise Unsupported("needs root to change uid after connecting")
    listener = _listen(socket_path, "stream")
    try:
        if change == "socket_passed_to_another_process":
            here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                with Child(_connect_and_hand_over, socket_path, there) as child:
                    conn = _accept(listener, child)
                    connector = child.join()  # the connecting process has exited and been reaped
                with rights.recv_fds(here, 1) as got, conn:
                    assert len(got.fds) == 1, "the connected socket did not arrive"
                    os.write(got.fds[0], b"from the new owner")  # this process is now the peer's last user
                    assert conn.recv(64) == b"from the new owner"
                    seen = or_unsupported(creds.peer_credentials, conn)
                    if creds.lookup("LOCAL_PEERPID", socket) is not None:
                        last = creds.peer_pid(conn)
                        observe("local_peerpid_after_handover",
                                "connector" if last == connector["pid"] else "new_owner" if last == os.getpid()
                                else "other")
            finally:
                here.close()
                there.close()
        else:
            with Event() as go, Child(_connect_then_change_uid, socket_path, go) as child:
                conn = _accept(listener, child)
                with conn:
                    assert conn.recv(64) == b"after setuid"
                    seen = or_unsupported(creds.peer_credentials, conn)
                    go.set()
                connector = child.join()
    finally:
        listener.close()
    assert seen.uid == connector["uid"], f"peer uid {seen.uid}; the process connected as {connector['uid']}"
    if seen.pid is not None:
        assert seen.pid == connector["pid"], f"peer pid {seen.pid}; the connecting process was {connector['pid']}"


NO_PEER = {
    "unconnected_stream": lambda: (socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),),
    "unbound_dgram": lambda: (socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM),),
    "dgram_socketpair": lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM),
}


@pytest.mark.parametrize("shape", list(NO_PEER))
@pytest.mark.refs(UNIX7 + " SO_PEERCRED", UNIX4 + " LOCAL_PEERCRED: ENOTCONN unconnected, EINVAL on datagram",
                  "POSIX.1-2024 XSH getsockopt()")
def test_peer_credentials_without_a_connected_stream_peer(shape, observe):
    socks = NO_PEER[shape]()
    try:
        try:
            seen = or_unsupported(creds.peer_credentials, socks[0])
        except OSError as e:
            observe("peer_answer", f"refused:{errno_name(e)}")
            return
        nobody_there = seen.pid in (0, None) and seen.uid in (0xFFFFFFFF, NOBODY)
        ourselves = seen.uid == os.geteuid() and seen.pid in (os.getpid(), None)
        observe("peer_answer", "no_one" if nobody_there else "creator" if ourselves else "other")
        assert nobody_there or (ourselves and len(socks) == 2), \
            f"{shape}: credentials {seen} name a process that is not the peer"
    finally:
        for s in socks:
            s.close()


# ---- pidfds (Linux 6.5+) -------------------------------------------------------------------------------------------

def _send_and_wait(sock, go: Event) -> int:
    sock.send(b"pidfd?")
    go.wait()
    return os.getpid()


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(f"{SCM_PIDFD}: SO_PASSPIDFD gives SCM_PIDFD of the sender", "Linux unix(7) SO_PASSPIDFD (6.5)")
def test_scm_pidfd_names_the_sender(pair):
    require("so_passpidfd")
    a, b = pair
    creds.enable_pidfds(b)
    with Event() as go, Child(_send_and_wait, a, go) as child:
        data, ancdata, flags, _ = b.recvmsg(64, rights.cmsg_space(4) * 4)
        with rights.parse(data, ancdata, flags) as got:
            pidfds, errors = creds.take_pidfds(got.other)
            try:
                assert not errors, f"SCM_PIDFD of a live sender carried an error: {[errno_name(e) for e in errors]}"
                assert len(pidfds) == 1, f"{len(pidfds)} SCM_PIDFD descriptors arrived"
                pid = creds.pidfd_pid(pidfds[0])
            finally:
                for fd in pidfds:
                    os.close(fd)
        go.set()
        sender = child.join()
    assert pid == sender, f"the SCM_PIDFD names pid {pid}; the sender is {sender}"


@pytest.mark.refs(f"{SCM_PIDFD}: SO_PEERPIDFD and SO_PEERCRED agree", "Linux unix(7) SO_PEERPIDFD (6.5)")
def test_so_peerpidfd_names_the_connecting_process(socket_path):
    require("so_peerpidfd")
    listener = _listen(socket_path, "stream")
    try:
        with Event() as go, Child(_connect_and_wait, socket_path, "stream", go, False) as child:
            conn = _accept(listener, child)
            with conn:
                assert conn.recv(1) == b"c"
                pidfd = creds.peer_pidfd(conn)
                try:
                    pid = creds.pidfd_pid(pidfd)
                finally:
                    os.close(pidfd)
                peercred_pid = creds.peer_credentials(conn).pid
                go.set()
            sender = child.join()
    finally:
        listener.close()
    assert pid == sender["pid"], f"SO_PEERPIDFD names pid {pid}; the connecting process is {sender['pid']}"
    assert peercred_pid == pid, f"SO_PEERCRED says {peercred_pid}, SO_PEERPIDFD says {pid}"


def _send_and_exit(sock) -> int:
    sock.send(b"gone")
    return os.getpid()


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(f"{SCM_PIDFD}: a pidfd for a sender that already exited")
def test_scm_pidfd_of_a_sender_that_has_exited(pair, observe):
    require("so_passpidfd")
    a, b = pair
    creds.enable_pidfds(b)
    with Child(_send_and_exit, a) as child:
        sender = child.join()  # exited and reaped before the message is received
    try:
        data, ancdata, flags, _ = b.recvmsg(64, rights.cmsg_space(4) * 4)
    except OSError as e:
        observe("exited_sender", f"refused:{errno_name(e)}")
        return
    with rights.parse(data, ancdata, flags) as got:
        pidfds, errors = creds.take_pidfds(got.other)
        try:
            pids = [creds.pidfd_pid(fd) for fd in pidfds]
        finally:
            for fd in pidfds:
                os.close(fd)
    assert data == b"gone", "the message of a sender that exited was lost"
    assert len(pidfds) + len(errors) <= 1, f"{len(pidfds)} pidfds and {len(errors)} errors for one message"
    if errors:  # the kernel could not make a pidfd and said why in the message
        observe("exited_sender", f"error_in_message:{errno_name(errors[0])}")
        return
    observe("exited_sender", "no_pidfd" if not pids else "pidfd_of_reaped" if pids == [-1] else "pidfd")
    assert all(pid in (-1, sender) for pid in pids), f"a pidfd for pid {pids}, the sender was {sender}"


# ---- credentials and a descriptor in one message -------------------------------------------------------------------

def _send_fd_with_credentials(sock, fd: int, cmsgs_of) -> dict:
    who = _as_sender()
    sock.sendmsg([b"\0\0"], [rights.rights_cmsg([fd])] + cmsgs_of())
    return who


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(SEED + ": send_fd with CREDSTRUCT, recv_ufd", UNIX7, UNIX4)
def test_credentials_and_a_descriptor_arrive_in_one_message(pair, workdir, observe):
    a, b = pair
    mechanism = or_unsupported(creds.message_mechanism)
    if not mechanism.per_message:
        raise Unsupported(f"no per-message credentials here ({mechanism.name} is connect-time only)")
    mechanism.prepare_receiver(b)
    fd = data_file(workdir)
    try:
        with Child(_send_fd_with_credentials, a, fd, mechanism.sender_cmsgs) as child:
            sender = child.join()
        got, seen = _receive(b, mechanism)
        with got:
            assert len(got.fds) == 1 and same_file(got.fds[0], fd), "the descriptor did not arrive with the credentials"
        _assert_names(seen, sender, mechanism)
    finally:
        os.close(fd)
