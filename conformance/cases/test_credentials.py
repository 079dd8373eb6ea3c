"""Credential passing, each platform's own way, and the proof that it cannot be forged.

Mechanisms come from conformance.credentials (Linux SO_PEERCRED, SO_PEERGROUPS, SCM_CREDENTIALS, SO_PASSCRED on
either end, SO_PASSPIDFD, SO_PEERPIDFD, PIDFD_GET_INFO; FreeBSD LOCAL_PEERCRED, SCM_CREDS, LOCAL_CREDS,
LOCAL_CREDS_PERSISTENT; macOS LOCAL_PEERCRED, LOCAL_PEERPID). A mechanism the platform lacks makes the case
`unsupported` with the reason. Run as root, the sender runs as `nobody` (65534) in a child, so the receiver must tell
it apart from itself by uid as well as pid; where groups are compared it first takes distinct supplementary groups.

Anchors: APUE 3e Figures 17.13/17.14 (seed 000: credentials over UNIX domain sockets), unix(7), FreeBSD unix(4),
tools/regression/sockets/unix_cmsg and tests/sys/kern/unix_passfd_test.c (rights_creds_payload), Linux
tools/testing/selftests/net/af_unix/scm_pidfd.c, LTP getsockopt02.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket

import pytest

from conformance import credentials as creds
from conformance.harness import rights
from conformance.harness.barriers import Event
from conformance.harness.children import Child, ExitWith
from conformance.harness.deadlines import DEFAULT_DEADLINE, deadline
from conformance.harness.privileges import NOBODY, drop_privileges
from conformance.outcomes import Unsupported
from conformance.platforms import constants
from conformance.platforms.probes import probe

from ._support import data_file, errno_name, free_pid, nothing_queued, or_unsupported, same_file
from .conftest import require, unix_socketpair

SEED = "APUE 3e 17.4 Figures 17.13/17.14 (seed 000: Sending/Receiving credentials over UNIX domain sockets)"
UNIX7 = "Linux unix(7): SO_PASSCRED, SCM_CREDENTIALS, SO_PEERCRED"
UNIX4 = "FreeBSD unix(4): LOCAL_PEERCRED, LOCAL_CREDS, LOCAL_CREDS_PERSISTENT, SCM_CREDS"
UNIX_CMSG = "FreeBSD tools/regression/sockets/unix_cmsg"
SCM_PIDFD = "Linux tools/testing/selftests/net/af_unix/scm_pidfd.c"
UNIX_PASSFD = "FreeBSD tests/sys/kern/unix_passfd_test.c"
KINDS = ["stream", "dgram"]
# Either of these in a received message's flags means something did not fit.
TRUNCATED = getattr(socket, "MSG_TRUNC", 0) | getattr(socket, "MSG_CTRUNC", 0)


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


def _mechanism(how: str) -> creds.Mechanism:
    """sender_attached: what a sender attaches to one message; receiver_requested: what a receiver asks for."""
    if how == "receiver_requested":
        return or_unsupported(creds.requested_mechanism, True)
    mechanism = or_unsupported(creds.message_mechanism)
    if not mechanism.per_message:
        raise Unsupported(f"no credentials a sender can attach here ({mechanism.name} is connect-time only)")
    return mechanism


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.parametrize("how", ["sender_attached", "receiver_requested"])
@pytest.mark.refs(SEED, UNIX7, UNIX4, f"{UNIX_CMSG}: t_cmsgcred, t_sockcred2")
def test_receiver_sees_the_identity_of_the_sending_child(pair, how, observe):
    a, b = pair
    mechanism = _mechanism(how)
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


# ---- per message: groups, who asked, and which request wins ---------------------------------------------------------

# Supplementary groups a sender run as root takes on before it drops to nobody, so that its group list is its own
# and not the suite's; numbers need no entry in the group database.
DISTINCT_GROUPS = [4711, 4712, 4713]


def _as_sender_with_groups() -> dict:
    """In a child: as _as_sender, with distinct supplementary groups where root can set them (else its own)."""
    if os.geteuid() == 0:
        os.setgroups(DISTINCT_GROUPS)
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "egid": os.getegid(),
            "groups": sorted(os.getgroups())}


def _assert_same_groups(seen: tuple, complete: bool, sender: dict, what: str) -> None:
    # The egid is left out on both sides: BSD group lists have carried it first, Linux's carry it only as a member.
    got, expected = set(seen) - {sender["egid"]}, set(sender["groups"]) - {sender["egid"]}
    if complete:
        assert got == expected, f"{what} lists groups {sorted(got)}; the sender's are {sorted(expected)}"
    else:  # a fixed array that is full may have cut the list short, never made one up
        assert got <= expected, f"{what} lists groups {sorted(got - expected)} the sender is not in"


def _send_with_groups(sock, cmsgs_of) -> dict:
    who = _as_sender_with_groups()
    sock.sendmsg([b"who"], cmsgs_of())
    return who


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.parametrize("how", ["sender_attached", "receiver_requested"])
@pytest.mark.refs(f"{UNIX_CMSG}: t_cmsgcred (cmcred_groups), t_sockcred (sc_groups)", UNIX4)
def test_the_senders_supplementary_groups_arrive_with_its_credentials(pair, how, observe):
    a, b = pair
    mechanism = _mechanism(how)
    if not mechanism.carries_groups:
        raise Unsupported(f"{mechanism.name}'s structure has no room for groups")
    mechanism.prepare_receiver(b)
    cmsgs_of = mechanism.sender_cmsgs if how == "sender_attached" else list
    with Child(_send_with_groups, a, cmsgs_of) as child:
        sender = child.join()
    got, seen = _receive(b, mechanism)
    got.close()
    _assert_names(seen, sender, mechanism)
    assert seen.groups is not None, f"{mechanism.name} arrived without its groups"
    observe("groups_complete", seen.groups_complete)
    _assert_same_groups(seen.groups, seen.groups_complete, sender, mechanism.name)


def _connect_and_send_twice(path: str, kind: str, go: Event) -> dict:
    who = _as_sender()
    client = socket.socket(socket.AF_UNIX, getattr(socket, f"SOCK_{kind.upper()}"))
    with client:
        client.connect(path)
        client.send(b"m0")
        go.wait()  # the second message only once the first is read: a stream must not merge them
        client.send(b"m1")
    return who


@pytest.mark.parametrize("kind", ["stream", "seqpacket"])
@pytest.mark.parametrize("asks", ["first_message", "every_message"])
@pytest.mark.refs(f"{UNIX_CMSG}: t_sockcred_1 (listening socket has LOCAL_CREDS)", UNIX4,
                  "FreeBSD sys/kern/uipc_usrreq.c unp_copy_peercred: UNP_WANTCRED_MASK from the listener",
                  "Linux net/unix/af_unix.c unix_stream_connect: sk_scm_recv_flags from the listener (6.16; "
                  "unix_sock_inherit_flags at accept before)")
def test_an_accepted_socket_inherits_the_listeners_request_for_credentials(socket_path, kind, asks, observe):
    require(f"sock_{kind}")
    mechanism = or_unsupported(creds.requested_mechanism, asks == "every_message")
    observe("mechanism", mechanism.name)
    listener = _listen(socket_path, kind)
    try:
        mechanism.prepare_receiver(listener)  # on the listener only, never on the accepted socket
        with Event() as go, Child(_connect_and_send_twice, socket_path, kind, go) as child:
            conn = _accept(listener, child)
            carried = []
            with conn:
                for i in range(2):
                    got, seen = _receive(conn, mechanism)
                    got.close()
                    assert got.data == b"m%d" % i
                    carried.append(seen)
                    if i == 0:
                        go.set()  # the second message may come now
            sender = child.join()
    finally:
        listener.close()
    observe("inherited_through_accept", carried[0] is not None)
    expected = [True, asks == "every_message"]
    assert [seen is not None for seen in carried] == expected, \
        f"credentials on messages {[seen is not None for seen in carried]}, the listener asked for {expected}"
    for seen in carried:
        if seen is not None:
            _assert_names(seen, sender, mechanism)


def _attach_twice(sock, cmsgs_of, go: Event) -> dict:
    who = _as_sender()
    sock.sendmsg([b"m0"], cmsgs_of())
    go.wait()
    sock.sendmsg([b"m1"], cmsgs_of())
    return who


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(f"{UNIX_CMSG}: t_cmsgcred_sockcred (sending cmsgcred, receiving sockcred)", UNIX4)
def test_credentials_the_receiver_asks_for_replace_those_the_sender_attaches(pair, socktype, observe):
    a, b = pair
    asked = or_unsupported(creds.requested_mechanism, False)
    attached = _mechanism("sender_attached")
    scm_creds = creds.lookup("SCM_CREDS", socket)
    if scm_creds is None or not attached.sender_cmsgs():
        raise Unsupported(f"no SCM_CREDS a sender attaches beside {asked.name} on {constants().NAME}")
    asked.prepare_receiver(b)
    b.settimeout(DEFAULT_DEADLINE)  # received while the sender lives: a sender that fails must not hang us
    found = []
    with Event() as go, Child(_attach_twice, a, attached.sender_cmsgs, go) as child:
        for i in range(2):
            data, ancdata, flags, _ = b.recvmsg(64, asked.control_space() + attached.control_space())
            with rights.parse(data, ancdata, flags):
                found.append([creds.decode_scm_creds(d) for level, kind, d in ancdata
                              if level == socket.SOL_SOCKET and kind == scm_creds])
            assert data == b"m%d" % i
            if i == 0:
                go.set()
        sender = child.join()
    kinds = [[kind for kind, _ in message] for message in found]
    observe("second_message", "+".join(kinds[1]) or "none")
    expected = [["sockcred"], ["cmsgcred" if socktype == "stream" else "sockcred"]]
    assert kinds == expected, f"SCM_CREDS structures per message {kinds}, LOCAL_CREDS promises {expected}"
    for message in found:
        for kind, seen in message:
            _assert_names(seen, sender, asked if kind == "sockcred" else attached)


def _ask_send_and_wait(sock, mechanism: creds.Mechanism, sent: Event, go: Event) -> dict:
    who = _as_sender()
    mechanism.prepare_sender(sock)  # on the sender's own socket: the receiver has not asked
    sock.send(b"asked")
    sent.set()
    go.wait()
    return who


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(f"{SCM_PIDFD}: test (cmsg_check_dead: the client's own SO_PASSCRED)",
                  "Linux net/unix/af_unix.c unix_maybe_add_creds: 'if source or destination socket asserted "
                  "SOCK_PASSCRED'", UNIX7)
def test_a_receiver_that_asks_late_learns_a_sender_that_asked_on_its_own_socket(pair, observe):
    a, b = pair
    mechanism = or_unsupported(creds.sender_requested_mechanism)
    with Event() as sent, Event() as go, Child(_ask_send_and_wait, a, mechanism, sent, go) as child:
        sent.wait(peer=child)  # queued before the receiver asks
        mechanism.prepare_receiver(b)
        got, seen = _receive(b, mechanism)
        got.close()
        go.set()
        sender = child.join()
    assert got.data == b"asked"
    _assert_names(seen, sender, mechanism)  # not the placeholder of a message nobody asked credentials for


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


def _connect_with_groups_and_wait(path: str, kind: str, go: Event) -> dict:
    who = _as_sender_with_groups()
    client = socket.socket(socket.AF_UNIX, getattr(socket, f"SOCK_{kind.upper()}"))
    with client:
        client.connect(path)
        client.send(b"c")
        go.wait()
    return who


@pytest.mark.parametrize("kind", ["stream", "seqpacket"])
@pytest.mark.refs(f"{UNIX_CMSG}: t_peercred (cr_groups)", UNIX4 + " LOCAL_PEERCRED",
                  "Linux net/core/sock.c SO_PEERGROUPS (4.13)")
def test_peer_credentials_carry_the_connecting_processs_groups(socket_path, kind):
    require(f"sock_{kind}")
    listener = _listen(socket_path, kind)
    try:
        with Event() as go, Child(_connect_with_groups_and_wait, socket_path, kind, go) as child:
            conn = _accept(listener, child)
            with conn:
                assert conn.recv(1) == b"c"
                groups, complete = or_unsupported(creds.peer_groups, conn)
                go.set()
            sender = child.join()
    finally:
        listener.close()
    # How many groups there are is the case's doing (root gives its child several), not the platform's: no observation.
    _assert_same_groups(groups, complete, sender, "the peer's connect-time credentials")


def _listen_and_wait(path: str, ready: Event, go: Event, change_uid: bool) -> dict:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener:
        listener.bind(path)
        listener.listen(1)
        listened_as = {"pid": os.getpid(), "uid": os.geteuid(), "gid": os.getegid()}
        if change_uid:
            drop_privileges(NOBODY)  # after listen(): the credentials it recorded stay root's
        ready.set()
        go.wait()  # the listener stays open until the connecting side has asked
    return listened_as


def _peer_pidfd_pid(sock: socket.socket) -> int | None:
    """The pid that the peer's pidfd names, where the platform gives one (None where it does not)."""
    if not probe("so_peerpidfd").supported:
        return None
    pidfd = creds.peer_pidfd(sock)
    try:
        return creds.pidfd_pid(pidfd)
    finally:
        os.close(pidfd)


@pytest.mark.parametrize("listener", ["as_it_listened", "changed_uid_after_listen"])
@pytest.mark.refs(f"{SCM_PIDFD}: test (client: SO_PEERCRED is the listener, SO_PEERPIDFD agrees)",
                  UNIX7 + " SO_PEERCRED: the credentials in effect at connect(2), listen(2) or socketpair(2)",
                  UNIX4 + " LOCAL_PEERCRED: the server's are cached at listen()", f"{UNIX_CMSG}: t_peercred (client)")
def test_the_connecting_side_sees_the_process_that_listens(socket_path, listener, observe):
    if listener == "changed_uid_after_listen" and os.geteuid() != 0:
        raise Unsupported("needs root to change uid after listen()")
    with Event() as ready, Event() as go, \
            Child(_listen_and_wait, socket_path, ready, go, listener != "as_it_listened") as child:
        ready.wait(peer=child)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with client:
            client.connect(socket_path)
            seen = or_unsupported(creds.peer_credentials, client)
            pidfd_names = _peer_pidfd_pid(client)
            go.set()
        listened = child.join()
    observe("peer_pidfd", "absent" if pidfd_names is None else "agrees" if pidfd_names == listened["pid"] else "other")
    assert seen.uid == listened["uid"], f"peer uid {seen.uid}; the process listened as {listened['uid']}"
    if seen.pid is not None:
        assert seen.pid == listened["pid"], f"peer pid {seen.pid}; the listening process is {listened['pid']}"
    if seen.gid is not None:
        assert seen.gid == listened["gid"], f"peer gid {seen.gid}; the process listened as {listened['gid']}"
    if pidfd_names is not None:
        assert pidfd_names == listened["pid"], f"SO_PEERPIDFD names {pidfd_names}, the listener is {listened['pid']}"


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


def _address(shape: str, socket_path: str, role: str):
    """Where the server or the client binds: a path in the case's directory, or a name in the abstract namespace."""
    if shape == "abstract":
        require("abstract_unix_addresses")
        return b"\0conformance-%d-%s-%s" % (os.getpid(), secrets.token_hex(6).encode(), role.encode())
    return socket_path if role == "server" else os.path.join(os.path.dirname(socket_path), "c")



def _pids_of_pidfds(other) -> tuple[list, list]:
    """The pid each SCM_PIDFD of a received message names, and the errors the kernel put in place of one; the pidfds
    themselves are closed on every path."""
    pidfds, errors = creds.take_pidfds(other)
    try:
        return [creds.pidfd_pid(fd) for fd in pidfds], errors
    finally:
        for fd in pidfds:
            os.close(fd)

def _ask_for_both_and_receive(kind: str, server, own, mechanism: creds.Mechanism, ready: Event) -> dict:
    """The client: connect (a datagram client bound first, to be reached by sendto), ask for credentials and
    pidfds, and receive one message into a control buffer of exactly their two CMSG_SPACEs."""
    client = socket.socket(socket.AF_UNIX, getattr(socket, f"SOCK_{kind.upper()}"))
    with client:
        client.settimeout(DEFAULT_DEADLINE)
        if kind == "dgram":
            client.bind(own)
        client.connect(server)
        mechanism.prepare_receiver(client)
        creds.enable_pidfds(client)
        ready.set()
        exact = mechanism.control_space() + rights.cmsg_space(rights.INT_SIZE)
        data, ancdata, flags, _ = client.recvmsg(16, exact)
        with rights.parse(data, ancdata, flags) as got:
            pids, errors = _pids_of_pidfds(got.other)
            seen = mechanism.read(client, got.other)
    return {"data": data, "flags": flags, "seen": seen, "pids": pids, "errors": errors, "controllen": exact}


@pytest.mark.parametrize("address", ["pathname", "abstract"])
@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(f"{SCM_PIDFD}: test (cmsg_check; stream/dgram, pathname/abstract variants)",
                  "Linux unix(7) SO_PASSCRED, SO_PASSPIDFD (6.5), abstract sockets")
def test_one_receive_gets_credentials_and_a_pidfd_in_an_exact_buffer(socket_path, socktype, address, observe):
    require("so_passpidfd")
    require(f"sock_{socktype}")
    mechanism = or_unsupported(creds.requested_mechanism, True)
    server_address, client_address = (_address(address, socket_path, role) for role in ("server", "client"))
    server = socket.socket(socket.AF_UNIX, getattr(socket, f"SOCK_{socktype.upper()}"))
    with server:
        server.bind(server_address)
        server.settimeout(DEFAULT_DEADLINE)
        if socktype == "stream":
            server.listen(1)
        with Event() as ready, \
                Child(_ask_for_both_and_receive, socktype, server_address, client_address, mechanism, ready) as child:
            if socktype == "stream":
                conn = _accept(server, child)
                with conn:
                    ready.wait(peer=child)
                    conn.send(b"x")
                    received = child.join()
            else:
                ready.wait(peer=child)
                server.sendto(b"x", client_address)  # to the client's own (bound) address
                received = child.join()
    observe("control_buffer", received["controllen"])
    assert received["data"] == b"x"
    assert not received["flags"] & TRUNCATED, f"flags {received['flags']:#x}: something did not fit"
    assert not received["errors"], f"SCM_PIDFD carried an error: {[errno_name(e) for e in received['errors']]}"
    assert len(received["pids"]) == 1, f"{len(received['pids'])} SCM_PIDFD descriptors beside the credentials"
    _assert_names(received["seen"], {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}, mechanism)
    assert received["pids"][0] == os.getpid(), f"the pidfd names {received['pids'][0]}, the sender is {os.getpid()}"


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
        pids, errors = _pids_of_pidfds(got.other)
    assert data == b"gone", "the message of a sender that exited was lost"
    assert len(pids) + len(errors) <= 1, f"{len(pids)} pidfds and {len(errors)} errors for one message"
    if errors:  # the kernel could not make a pidfd and said why in the message
        observe("exited_sender", f"error_in_message:{errno_name(errors[0])}")
        return
    observe("exited_sender", "no_pidfd" if not pids else "pidfd_of_reaped" if pids == [-1] else "pidfd")
    assert all(pid in (-1, sender) for pid in pids), f"a pidfd for pid {pids}, the sender was {sender}"


# The exit status the sender ends with: not 0, which a structure never filled in would also read as.
EXIT_STATUS = 123


def _ask_send_and_exit(sock, mechanism: creds.Mechanism) -> ExitWith:
    who = _as_sender()
    mechanism.prepare_sender(sock)  # the receiver asks only after this process is gone
    creds.enable_pidfds(sock)
    sock.send(b"gone")
    return ExitWith(who, EXIT_STATUS)


@pytest.mark.parametrize("socktype", KINDS)
@pytest.mark.refs(f"{SCM_PIDFD}: test (cmsg_check_dead: PIDFD_GET_INFO exit_code of a reaped sender)",
                  "Linux include/uapi/linux/pidfd.h PIDFD_GET_INFO, PIDFD_INFO_EXIT (6.15)",
                  "Linux net/unix/af_unix.c unix_maybe_add_creds: pidfs_register_pid (6.16)")
def test_the_pidfd_of_a_reaped_sender_tells_how_it_exited(pair, observe):
    require("so_passpidfd")
    require("pidfd_get_info")
    a, b = pair
    mechanism = or_unsupported(creds.sender_requested_mechanism)
    with Child(_ask_send_and_exit, a, mechanism) as child:
        sender = child.join()  # exited with EXIT_STATUS and reaped before the receiver asks
    mechanism.prepare_receiver(b)
    creds.enable_pidfds(b)
    data, ancdata, flags, _ = b.recvmsg(64, mechanism.control_space() + rights.cmsg_space(rights.INT_SIZE))
    with rights.parse(data, ancdata, flags) as got:
        pidfds, errors = creds.take_pidfds(got.other)
        try:
            seen = mechanism.read(b, got.other)
            infos = [creds.pidfd_info(fd) for fd in pidfds]
        finally:
            for fd in pidfds:
                os.close(fd)
    assert data == b"gone", "the message of a sender that exited was lost"
    assert not flags & TRUNCATED, f"flags {flags:#x}: something did not fit"
    _assert_names(seen, sender, mechanism)
    if errors:  # the kernel could not make a pidfd of a reaped process and said why in its place
        observe("reaped_sender_pidfd", f"error_in_message:{errno_name(errors[0])}")
        raise Unsupported(f"no pidfd of a reaped sender here: {errno_name(errors[0])} in its place")
    assert len(infos) == 1, f"{len(infos)} SCM_PIDFD descriptors for one message"
    status = infos[0].exit_status
    observe("reaped_sender_pidfd", "exit_status" if status is not None else "no_exit_information")
    assert status is not None, f"PIDFD_GET_INFO has no exit status for the reaped sender (mask {infos[0].mask:#x})"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_STATUS, \
        f"wait status {status:#x} from PIDFD_GET_INFO; the sender exited with {EXIT_STATUS}"


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


def _pattern(size: int) -> bytes:
    """Bytes whose position shows in their value (a prime period): a lost, repeated or moved chunk is seen."""
    period = bytes(range(251))
    return (period * (size // len(period) + 1))[:size]


def _send_past_the_buffer(sock, fd: int, payload: bytes) -> dict:
    who = _as_sender()
    sock.setblocking(False)  # a short write instead of waiting for room
    who["sent"] = sock.sendmsg([payload], [rights.rights_cmsg([fd])])
    return who


def _read_everything(sock, nbytes: int, mechanism: creds.Mechanism, fds: list) -> tuple[bytes, list]:
    """Every byte sent, one recvmsg at a time, none waiting (it is all queued); the descriptors go to fds."""
    controllen = mechanism.control_space() + rights.rights_space(1)
    chunks, reads, total = [], [], 0
    while total < nbytes:
        try:
            data, ancdata, flags, _ = sock.recvmsg(nbytes - total, controllen, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        got = rights.parse(data, ancdata, flags)
        received = got.take()
        fds.extend(received)
        if not data:
            break
        reads.append({"fds": len(received), "seen": mechanism.read(sock, got.other), "ctrunc": got.ctrunc})
        chunks.append(data)
        total += len(data)
    return b"".join(chunks), reads


@pytest.mark.parametrize("asks", ["first_message", "every_message"])
@pytest.mark.refs(f"{UNIX_PASSFD}: rights_creds_payload (PR 181741)", UNIX4 + " LOCAL_CREDS", UNIX7 + " SO_PASSCRED")
def test_a_short_write_at_the_buffer_limit_still_delivers_the_descriptor_and_credentials(
        stream_pair, workdir, asks, observe):
    a, b = stream_pair
    mechanism = or_unsupported(creds.requested_mechanism, asks == "every_message")
    mechanism.prepare_receiver(b)
    sndbuf = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    payload = _pattern(2 * sndbuf)  # more than the send buffer holds, whatever it counts the control data as
    fd = data_file(workdir)
    received: list = []
    try:
        with Child(_send_past_the_buffer, a, fd, payload) as child:
            sender = child.join()
        sent = sender["sent"]
        observe("sent_vs_sndbuf", "less" if sent < sndbuf else "equal" if sent == sndbuf else "more")
        assert 0 < sent < len(payload), f"a non-blocking write of {len(payload)} bytes sent {sent}"
        data, reads = _read_everything(b, sent, mechanism, received)
        observe("reads", len(reads))
        assert len(data) == sent, f"{len(data)} of the {sent} bytes sent arrived"
        assert data == payload[:sent], "the bytes that arrived are not the bytes sent, in order"
        assert not any(r["ctrunc"] for r in reads), "MSG_CTRUNC: the control data did not fit"
        assert len(received) == 1 and same_file(received[0], fd), f"{len(received)} descriptors arrived, not the one"
        with_fd = [r for r in reads if r["fds"]]
        assert with_fd[0]["seen"] is not None, "the data that carried the descriptor carried no credentials"
        for r in reads:
            if r["seen"] is not None:
                _assert_names(r["seen"], sender, mechanism)
    finally:
        for got_fd in [fd, *received]:
            os.close(got_fd)
