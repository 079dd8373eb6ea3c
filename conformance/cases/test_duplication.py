"""Channel-independent duplication: a token sent over any channel, redeemed with pidfd_open + pidfd_getfd.

The seed (004, QNX) sends a small "dup" message over a pipe or a message queue and the receiver turns it into its
own descriptor for the sender's open file, "only between clients in similar uid groups (or root)". On Linux the
token names a pid and a descriptor number (conformance.duplication); pidfd_getfd(2) duplicates it under ptrace
access rules. Each case checks one behaviour: the duplicate is the sender's open file description (offset, status
flags, OFD and flock locks, not classic locks) with FD_CLOEXEC; the kernel's refusals (EBADF, EINVAL, ESRCH,
EPERM and what Yama's ptrace_scope and the dumpable flag change); and the contrast with reopening
/proc/<pid>/fd/<n>, which makes a new open file description.

Anchors: pidfd_getfd(2), LTP pidfd_getfd01 (FD_CLOEXEC, same description) and pidfd_getfd02 (EBADF, EINVAL,
ESRCH, EPERM), ptrace(2) "Ptrace access mode checking", Linux Documentation/admin-guide/LSM/Yama.rst, proc_pid_fd(5).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket

import pytest

from conformance import channels, duplication, locks
from conformance.duplication import TOKEN_SIZE
from conformance.harness import fds as fdlist
from conformance.harness.barriers import Event
from conformance.harness.children import Child
from conformance.harness.deadlines import DEFAULT_DEADLINE
from conformance.harness.privileges import NOBODY, drop_privileges
from conformance.outcomes import Unsupported
from conformance.platforms import constants, process

from ._support import errno_name, or_unsupported, require_lock_family
from .conftest import require

SEED = "seed 004 (QNX: a dup message sent over any channel, 'only between clients in similar uid groups (or root)')"
MAN = "pidfd_getfd(2)"
LTP_01 = "LTP pidfd_getfd01: FD_CLOEXEC and the same open file description"
LTP_02 = "LTP pidfd_getfd02: EBADF, EINVAL, ESRCH, EPERM"
PTRACE = "ptrace(2): Ptrace access mode checking (PTRACE_MODE_ATTACH_REALCREDS)"
YAMA = "Linux Documentation/admin-guide/LSM/Yama.rst: ptrace_scope"
PROC_FD = "proc_pid_fd(5): opening /proc/<pid>/fd/<n> opens the file anew"
CHANNEL_PROBE = {"unix_dgram": "sock_dgram", "mqueue": "posix_mqueue"}
CLASSIC = locks.family("posix")  # the one family a case names; the others are chosen by property


@pytest.fixture(autouse=True)
def _needs_pidfd_getfd():
    require("pidfd_getfd")


def _become_unprivileged() -> None:
    """In a child: leave root for nobody and stay dumpable, so that only the ptrace rules under test decide."""
    if os.geteuid() == 0:
        drop_privileges(NOBODY)
        duplication.set_dumpable(True)  # a uid change clears it (ptrace(2)), which would refuse even nobody


def _scope_refuses_unprivileged(scope: int | None) -> bool:
    return scope is not None and scope >= 2


def _needs_ptrace_access() -> None:
    """`unsupported` where Yama refuses this process every other one (scope 3; scope 2 without root): the
    behaviour under test hides behind that EPERM."""
    scope = duplication.yama_ptrace_scope()
    if scope == 3 or (_scope_refuses_unprivileged(scope) and os.geteuid() != 0):
        raise Unsupported(f"Yama ptrace_scope {scope} refuses pidfd_getfd to this process")


def _redeem(token: bytes) -> int:
    _needs_ptrace_access()
    return duplication.redeem(token)


class Sender:
    """A child that opens a descriptor (`open_fd()`), prepares it, sends a token for it over `channel` and keeps it
    open until finish(), which returns what `report(fd)` returned in the child."""

    def __init__(self, channel: channels.Channel, open_fd, *, prepare=None, report=None, setup=None) -> None:
        self.channel = channel
        self.go = Event()
        self.child = Child(self._main, open_fd, prepare, report, setup)

    def _main(self, open_fd, prepare, report, setup):
        if setup is not None:
            setup()
        fd = open_fd()
        if prepare is not None:
            prepare(fd)
        self.channel.send(duplication.make_token(fd))
        self.go.wait(DEFAULT_DEADLINE)
        return report(fd) if report is not None else None

    @property
    def pid(self) -> int:
        return self.child.pid

    def token(self) -> bytes:
        return self.channel.receive(TOKEN_SIZE, DEFAULT_DEADLINE)

    def finish(self):
        self.go.set()
        return self.child.join(DEFAULT_DEADLINE)

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.child.kill()
        self.go.close()


@pytest.fixture
def pipe_channel():
    with channels.Pipe() as channel:
        yield channel


@pytest.fixture
def datafile(workdir):
    path = workdir / "data"
    path.write_bytes(b"0123456789" * 4)
    return path


def _opener(path, flags: int = os.O_RDWR):
    return lambda: os.open(path, flags)


def _names(fd: int, path) -> bool:
    st = os.stat(path)
    return os.fstat(fd)[1:3] == (st.st_ino, st.st_dev)


def _offset(fd: int) -> int:
    return os.lseek(fd, 0, os.SEEK_CUR)


# ---- the duplicate is the sender's open file description ----------------------------------------------------------

@pytest.mark.parametrize("kind", channels.KINDS)
@pytest.mark.refs(SEED + ": the message goes over a pipe or an mq_send() queue", MAN, LTP_01)
def test_token_through_the_channel_gives_the_senders_open_file_description(workdir, datafile, kind):
    if kind in CHANNEL_PROBE:
        require(CHANNEL_PROBE[kind])
    channel = or_unsupported(channels.make, kind, workdir, TOKEN_SIZE)
    with channel, Sender(channel, _opener(datafile), prepare=lambda fd: os.lseek(fd, 3, os.SEEK_SET),
                         report=_offset) as sender:
        dup = _redeem(sender.token())
        try:
            assert _names(dup, datafile), "the duplicate names another file"
            assert _offset(dup) == 3, f"the duplicate starts at offset {_offset(dup)}, the sender's is at 3"
            os.lseek(dup, 7, os.SEEK_SET)
            assert sender.finish() == 7, "moving the duplicate's offset did not move the sender's: two descriptions"
        finally:
            os.close(dup)


def _status_flags(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & (os.O_APPEND | os.O_NONBLOCK)


@pytest.mark.refs(MAN + ": 'the same open file description'", LTP_01, "POSIX.1-2024 XSH fcntl() F_SETFL")
def test_duplicate_shares_the_file_status_flags(pipe_channel, datafile):
    prepare = lambda fd: fcntl.fcntl(fd, fcntl.F_SETFL, os.O_APPEND)  # noqa: E731
    with Sender(pipe_channel, _opener(datafile), prepare=prepare, report=_status_flags) as sender:
        dup = _redeem(sender.token())
        try:
            assert _status_flags(dup) == os.O_APPEND, "the sender's O_APPEND is not seen through the duplicate"
            fcntl.fcntl(dup, fcntl.F_SETFL, os.O_NONBLOCK)  # clears O_APPEND, sets O_NONBLOCK
            assert sender.finish() == os.O_NONBLOCK, "F_SETFL through the duplicate did not reach the sender"
        finally:
            os.close(dup)


@pytest.mark.refs(MAN + ": 'The close-on-exec flag (FD_CLOEXEC) is set on the file descriptor returned'", LTP_01)
def test_duplicate_has_fd_cloexec_whatever_the_senders_flag(pipe_channel, datafile):
    prepare = lambda fd: os.set_inheritable(fd, True)  # noqa: E731 (clears FD_CLOEXEC in the sender)
    with Sender(pipe_channel, _opener(datafile), prepare=prepare, report=fdlist.is_cloexec) as sender:
        dup = _redeem(sender.token())
        try:
            assert fdlist.is_cloexec(dup), "the duplicate lacks FD_CLOEXEC"
            assert sender.finish() is False, "duplicating set FD_CLOEXEC on the sender's own descriptor"
        finally:
            os.close(dup)


def _socket_end(pair: list):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pair += [a, b]
    return a.fileno()


def _received(pair: list) -> bytes:
    ready, _, _ = select.select([pair[1]], [], [], DEFAULT_DEADLINE)
    return pair[1].recv(16) if ready else b""


@pytest.mark.refs(MAN, SEED + ": 'Only works using normal file descriptors'")
def test_duplicate_of_a_socket_is_the_same_socket(pipe_channel):
    pair: list = []  # filled in the child
    with Sender(pipe_channel, lambda: _socket_end(pair), report=lambda fd: _received(pair)) as sender:
        dup = _redeem(sender.token())
        with socket.socket(fileno=dup) as sock:
            assert sock.type == socket.SOCK_STREAM and sock.family == socket.AF_UNIX
            sock.send(b"ping")
            assert sender.finish() == b"ping", "what was sent through the duplicate did not reach the sender's peer"


# ---- locks through the duplicate ------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", locks.families(owner="description"), ids=str)
@pytest.mark.refs(MAN, "Linux fcntl(2): OFD locks belong to the open file description",
                  "flock(2): locks are associated with the open file description")
def test_description_lock_is_the_same_lock_through_the_duplicate(pipe_channel, datafile, family):
    require_lock_family(family)
    with Sender(pipe_channel, _opener(datafile), prepare=lambda fd: family.lock(fd, "write")) as sender:
        dup = _redeem(sender.token())
        try:
            family.lock(dup, "write")  # another description would conflict with the sender's lock
            assert locks.holder(datafile, family) is not None, "the sender's lock is not held"
            family.unlock(dup)
            held = locks.holder(datafile, family)
            assert held is None, f"unlocking through the duplicate left the sender's {family} lock: {held}"
        finally:
            os.close(dup)
        sender.finish()


@pytest.mark.refs(MAN, "POSIX.1-2024 XSH fcntl(): record locks are owned by the process",
                  "seed 001: classic locks belong to the process")
def test_classic_lock_is_not_shared_through_the_duplicate(pipe_channel, datafile, observe):
    require_lock_family(CLASSIC)
    prepare = lambda fd: CLASSIC.lock(fd, "write")  # noqa: E731
    with Sender(pipe_channel, _opener(datafile), prepare=prepare) as sender:
        dup = _redeem(sender.token())
        try:
            with pytest.raises(OSError) as refused:
                CLASSIC.lock(dup, "write")
            observe("classic_lock_through_duplicate", errno_name(refused.value))
            assert refused.value.errno in (errno.EAGAIN, errno.EACCES), f"refused with {refused.value}"
        finally:
            os.close(dup)  # this process's close: the sender's classic lock is not this process's to drop
        held = locks.holder(datafile, CLASSIC)
        assert held is not None and held.pid == sender.pid, f"closing the duplicate changed the sender's lock: {held}"
        sender.finish()


@pytest.mark.parametrize("family", locks.families(), ids=str)
@pytest.mark.refs(MAN, "POSIX.1-2024 XSH fcntl(): classic locks are released when the process ends",
                  "Linux fcntl(2): OFD locks are released on the last close of the description", "flock(2)")
def test_lock_after_the_sender_exits_while_the_duplicate_is_open(pipe_channel, datafile, family, observe):
    require_lock_family(family)
    # A description's lock lives as long as the description, which the duplicate keeps; a process's dies with it.
    expected = "held" if family.owner == "description" else "released"
    with Sender(pipe_channel, _opener(datafile), prepare=lambda fd: family.lock(fd, "write")) as sender:
        dup = _redeem(sender.token())
        try:
            sender.finish()  # the sender closes its descriptor by exiting
            seen = "held" if locks.holder(datafile, family) is not None else "released"
            observe("lock_after_sender_exit", seen)
            assert seen == expected, f"the {family} lock is {seen} after its sender exited"
        finally:
            os.close(dup)
    assert locks.holder(datafile, family) is None, "the lock outlived the last descriptor of its description"


# ---- the contrast: reopening /proc/<pid>/fd/<n> ------------------------------------------------------------------

def _proc_path(pid: int, fd: int) -> str:
    template = constants().PROC_PID_FD
    if template is None:
        raise Unsupported(f"no /proc/<pid>/fd on {constants().NAME}")
    return template.format(pid=pid, fd=fd)


def _target_fd(token: bytes) -> int:
    return duplication.parse_token(token).fd


@pytest.mark.refs(PROC_FD, MAN)
def test_reopening_proc_fd_makes_a_new_open_file_description(pipe_channel, datafile, observe):
    with Sender(pipe_channel, _opener(datafile), prepare=lambda fd: os.lseek(fd, 3, os.SEEK_SET),
                report=_offset) as sender:
        token = sender.token()
        reopened = os.open(_proc_path(sender.pid, _target_fd(token)), os.O_RDWR)
        try:
            assert _names(reopened, datafile), "the reopened descriptor names another file"
            observe("proc_reopen_offset", _offset(reopened))
            assert _offset(reopened) == 0, "the reopened descriptor starts at the sender's offset"
            os.lseek(reopened, 5, os.SEEK_SET)
            assert sender.finish() == 3, "moving the reopened descriptor moved the sender's offset"
        finally:
            os.close(reopened)


@pytest.mark.parametrize("family", locks.families(owner="description"), ids=str)
@pytest.mark.refs(PROC_FD, "Linux fcntl(2): OFD locks", "flock(2)")
def test_reopening_proc_fd_does_not_share_the_lock(pipe_channel, datafile, family):
    require_lock_family(family)
    with Sender(pipe_channel, _opener(datafile), prepare=lambda fd: family.lock(fd, "write")) as sender:
        reopened = os.open(_proc_path(sender.pid, _target_fd(sender.token())), os.O_RDWR)
        try:
            with pytest.raises((BlockingIOError, PermissionError)):
                family.lock(reopened, "write")
        finally:
            os.close(reopened)
        sender.finish()


@pytest.mark.refs(PROC_FD + " (a socket cannot be opened: ENXIO)", MAN)
def test_reopening_proc_fd_of_a_socket_fails_where_the_duplicate_works(pipe_channel, observe):
    pair: list = []
    with Sender(pipe_channel, lambda: _socket_end(pair), report=lambda fd: _received(pair)) as sender:
        token = sender.token()
        with pytest.raises(OSError) as refused:
            os.close(os.open(_proc_path(sender.pid, _target_fd(token)), os.O_RDWR))
        observe("proc_reopen_socket_errno", errno_name(refused.value))
        assert refused.value.errno == errno.ENXIO, f"reopening a socket failed with {refused.value}, not ENXIO"
        with socket.socket(fileno=_redeem(token)) as sock:
            sock.send(b"ping")
        assert sender.finish() == b"ping"


# ---- what the kernel refuses ----------------------------------------------------------------------------------------

def _refusal(call, *args) -> str:
    with pytest.raises(OSError) as refused:
        os.close(call(*args))
    return errno_name(refused.value)


@pytest.mark.refs(MAN + ": EBADF 'targetfd is not an open file descriptor in the process'", LTP_02)
def test_target_descriptor_that_is_not_open_is_ebadf(pipe_channel):
    def closed() -> int:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.close(fd)
        return fd

    _needs_ptrace_access()
    with Sender(pipe_channel, closed) as sender:
        assert _refusal(duplication.redeem, sender.token()) == "EBADF"
        sender.finish()


@pytest.mark.refs(MAN + ": EBADF 'pidfd is not a valid PID file descriptor'", LTP_02)
def test_descriptor_that_is_not_a_pidfd_is_ebadf(datafile):
    fd = os.open(datafile, os.O_RDONLY)
    try:
        assert _refusal(duplication.pidfd_getfd, fd, 0) == "EBADF"
    finally:
        os.close(fd)


@pytest.mark.parametrize("flags", [1, os.O_CLOEXEC, 1 << 31], ids=["one", "o_cloexec", "high_bit"])
@pytest.mark.refs(MAN + ": EINVAL 'flags is not 0'", LTP_02)
def test_nonzero_flags_are_einval(flags):
    pidfd = duplication.pidfd_open(os.getpid())
    try:
        assert _refusal(duplication.pidfd_getfd, pidfd, pidfd, flags) == "EINVAL"
    finally:
        os.close(pidfd)


def _pidfd_of_a_child_that_exits():
    go = Event()
    child = Child(go.wait, DEFAULT_DEADLINE)
    try:
        pidfd = duplication.pidfd_open(child.pid)  # the child waits for `go`, so it is still alive here
    except BaseException:
        child.kill()
        go.close()
        raise
    return go, child, pidfd


@pytest.mark.refs(MAN + ": ESRCH 'the process referred to by pidfd does not exist (it has terminated and been "
                  "waited on)'", LTP_02)
def test_process_already_reaped_is_esrch():
    go, child, pidfd = _pidfd_of_a_child_that_exits()
    try:
        go.set()
        child.join(DEFAULT_DEADLINE)
        assert _refusal(duplication.pidfd_getfd, pidfd, 0) == "ESRCH"
    finally:
        os.close(pidfd)
        child.kill()
        go.close()


@pytest.mark.refs(MAN + " (silent on a process that has exited but is not yet reaped)", "Linux kernel/pid.c "
                  "pidfd_getfd: the task still exists, its descriptor table does not")
def test_process_exited_but_not_reaped_is_refused(observe):
    _needs_ptrace_access()
    go, child, pidfd = _pidfd_of_a_child_that_exits()
    try:
        go.set()
        ready, _, _ = select.select([pidfd], [], [], DEFAULT_DEADLINE)  # a pidfd turns readable when the process exits
        assert ready, "the child did not exit within its deadline"
        name = _refusal(duplication.pidfd_getfd, pidfd, 0)
        observe("exited_unreaped_errno", name)
        assert name in ("EBADF", "ESRCH"), f"a zombie's descriptor 0 was refused with {name}"
    finally:
        os.close(pidfd)
        child.kill()
        go.close()


def _try_duplicate_of(pid: int, fd: int) -> str:
    _become_unprivileged()
    pidfd = duplication.pidfd_open(pid)
    try:
        os.close(duplication.pidfd_getfd(pidfd, fd))
        return "duplicated"
    except OSError as e:
        return errno_name(e)
    finally:
        os.close(pidfd)


@pytest.mark.refs(MAN + ": EPERM 'did not have PTRACE_MODE_ATTACH_REALCREDS permissions'", LTP_02, PTRACE,
                  SEED + ": 'Only works between clients in similar uid groups (or root)'")
def test_caller_of_another_uid_without_privilege_is_eperm(observe):
    if os.geteuid() == 0:
        target, fd = os.getpid(), 0  # this root process, asked from a child that became nobody
    else:
        target, fd = process.process_of_another_uid(), 0
        if target is None:
            raise Unsupported("no process of another uid is visible in /proc to ask for")
    with Child(_try_duplicate_of, target, fd) as child:
        answer = child.join(DEFAULT_DEADLINE)
    observe("other_uid_errno", answer)
    assert answer == "EPERM", f"an unprivileged caller asking another uid's process got {answer}"


def _redeem_in_child(channel: channels.Channel, unprivileged: bool = True) -> str:
    """In a redeeming child: the token from `channel` redeemed, as "duplicated" or the errno's name."""
    if unprivileged:
        _become_unprivileged()
    try:
        os.close(duplication.redeem(channel.receive(TOKEN_SIZE, DEFAULT_DEADLINE)))
        return "duplicated"
    except OSError as e:
        return errno_name(e)


def _unprivileged_sender(declare_ptracer: bool, dumpable: bool = True):
    def setup() -> None:
        _become_unprivileged()
        if declare_ptracer:
            duplication.allow_any_ptracer()  # no Yama: nothing to declare, and nothing to lose
        duplication.set_dumpable(dumpable)
    return setup


def _pipe_end() -> int:
    return os.pipe()[1]


# What a same-uid sibling gets at each ptrace_scope (Yama.rst): 0 the classic checks, 1 only descendants or a
# declared ptracer, 2 only CAP_SYS_PTRACE, 3 nobody. No Yama behaves as 0.
def _sibling_expected(scope: int | None, declared: bool) -> str:
    if scope in (None, 0) or (scope == 1 and declared):
        return "duplicated"
    return "EPERM"


@pytest.mark.parametrize("declared", [False, True], ids=["plain", "ptracer_declared"])
@pytest.mark.refs(YAMA, PTRACE, "prctl(2) PR_SET_PTRACER", SEED + ": two clients of one uid")
def test_sibling_of_the_same_uid_as_yama_allows(pipe_channel, declared, observe):
    scope = duplication.yama_ptrace_scope()
    observe("yama_ptrace_scope", "absent" if scope is None else scope)
    with Sender(pipe_channel, _pipe_end, setup=_unprivileged_sender(declared)) as sender, \
            Child(_redeem_in_child, pipe_channel) as redeemer:
        answer = redeemer.join(DEFAULT_DEADLINE)
        sender.finish()
    observe("sibling_redeem", answer)
    expected = _sibling_expected(scope, declared)
    assert answer == expected, f"ptrace_scope {scope}: a sibling of the same uid got {answer}, expected {expected}"


@pytest.mark.parametrize("caller", ["unprivileged", "root"])
@pytest.mark.refs(PTRACE + ": a non-dumpable target needs CAP_SYS_PTRACE", "prctl(2) PR_SET_DUMPABLE",
                  "setuid(2)/execve(2): a credential change clears the dumpable flag")
def test_sender_that_is_not_dumpable_is_refused_without_cap_sys_ptrace(pipe_channel, caller, observe):
    scope = duplication.yama_ptrace_scope()
    if caller == "root" and os.geteuid() != 0:
        raise Unsupported("a root caller needs the suite to run as root")
    if scope == 3 or (caller == "unprivileged" and _scope_refuses_unprivileged(scope)):
        raise Unsupported(f"Yama ptrace_scope {scope} refuses this caller whatever the dumpable flag says")

    setup = _unprivileged_sender(declare_ptracer=True, dumpable=False)
    with Sender(pipe_channel, _pipe_end, setup=setup) as sender, \
            Child(_redeem_in_child, pipe_channel, caller == "unprivileged") as redeemer:
        answer = redeemer.join(DEFAULT_DEADLINE)
        sender.finish()
    observe("not_dumpable_redeem", answer)
    expected = "duplicated" if caller == "root" else "EPERM"
    assert answer == expected, f"a {caller} caller asking a non-dumpable sender got {answer}, expected {expected}"


# ---- the token's own guard against pid reuse ----------------------------------------------------------------------

@pytest.mark.refs(SEED + ": the receiver validates the message before it acts on it", MAN + ": ESRCH")
def test_token_of_a_sender_that_is_gone_is_refused(pipe_channel, datafile, observe):
    with Sender(pipe_channel, _opener(datafile)) as sender:
        token = sender.token()
        sender.finish()
    try:
        os.close(duplication.redeem(token))
    except duplication.StaleToken:
        seen = "stale"  # the pid names another process already
    except OSError as e:
        seen = errno_name(e)
    else:
        seen = "duplicated"
    observe("token_of_gone_sender", seen)
    assert seen in ("ESRCH", "stale"), f"a token of a reaped sender was answered with {seen}"


@pytest.mark.refs(SEED, "proc_pid_stat(5): starttime, field 22")
def test_token_naming_another_start_time_is_refused(pipe_channel, datafile):
    if constants().PROC_STAT is None:
        raise Unsupported(f"no process start time is readable on {constants().NAME}")
    with Sender(pipe_channel, _opener(datafile)) as sender:
        token = duplication.parse_token(sender.token())
        forged = duplication.Token(token.pid, token.fd, token.start + 1).pack()
        with pytest.raises(duplication.StaleToken):
            os.close(duplication.redeem(forged))
        sender.finish()
