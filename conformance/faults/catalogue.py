"""The faults the layer (layer.c) can plant, each with the behaviour it breaks, that behaviour's reference, and the
areas of the suite that should notice.

An area here is a selection of cases, named like the report's areas where it is one of them: `conformance mutants`
runs a fault's areas, and only those, with the fault planted, and compares each case with the run without it.
A fault the layer implements only on some OSes names them; elsewhere it is `not applicable`, never a blind spot.
"""

from __future__ import annotations

from dataclasses import dataclass

# Area -> the cases it selects, as pytest arguments relative to conformance/cases. A fault's run takes its areas in
# the order the fault lists them and stops at its tenth red case: the first area is the one that must see it.
AREAS: dict[str, tuple[str, ...]] = {
    "arguments": ("test_arguments.py",),
    "credentials": ("test_credentials.py",),
    "duplication": ("test_duplication.py",),
    "flock_modes": ("test_flock_modes.py",),
    "format": ("test_format.py",),
    "lock_histories": ("test_exploration.py::test_random_lock_histories_agree_with_the_model",),
    "lock_ranges": ("test_lock_ranges.py",),
    "lock_waiters": ("test_lock_waiters.py",),
    "locks": ("test_locks.py",),
    "protocol": ("test_protocol.py", "test_protocol_c.py"),
    "rights": ("test_rights.py",),
}

EVERYWHERE = ("linux", "freebsd", "darwin", "illumos")
LINUX = ("linux",)
LINUX_FREEBSD = ("linux", "freebsd")
# The message faults rewrite struct msghdr: on illumos the layer wraps the __xnet_ functions that an interpreter
# built with _XPG4_2 calls, which has not been run; they are planted where it has been built and run.
MESSAGES = ("linux", "freebsd", "darwin")


@dataclass(frozen=True)
class Fault:
    name: str  # as $CONFORMANCE_FAULT names it to the layer
    breaks: str  # the behaviour the platform no longer has
    reference: str  # where that behaviour is specified
    areas: tuple[str, ...]  # keys of AREAS: where the suite should notice
    platforms: tuple[str, ...] = EVERYWHERE  # where the layer can plant it
    unobservable: str = ""  # why no case can see it, when that has been shown; never a blind spot then

    def applies_to(self, os_name: str) -> bool:
        return os_name in self.platforms


_RIGHTS = ("rights", "format", "protocol")

CATALOGUE: tuple[Fault, ...] = (
    # ---- descriptors passed with SCM_RIGHTS -------------------------------------------------------------------------
    Fault("rights-drop-last", "every descriptor sent arrives: the last of each message is closed and removed, with no "
          "MSG_CTRUNC", "POSIX recvmsg(): ancillary data is delivered whole or MSG_CTRUNC is set; unix(7) SCM_RIGHTS",
          _RIGHTS, MESSAGES),
    Fault("rights-leak-original", "a received descriptor is the one the kernel installed: each arrives as a duplicate "
          "and the original stays open, referred to by nothing", "unix(7) SCM_RIGHTS: one new descriptor per one sent",
          _RIGHTS, MESSAGES),
    Fault("rights-reorder", "descriptors of one message arrive in the order sent: they arrive reversed",
          "unix(7) SCM_RIGHTS; Linux scm_detach_fds installs them in array order", ("rights", "format"), MESSAGES),
    Fault("rights-replaced", "a received descriptor refers to the open file description sent: each is replaced by "
          "/dev/null", "POSIX sendmsg(): SCM_RIGHTS passes open file descriptions", ("rights", "protocol"), MESSAGES),
    Fault("ctrunc-hidden", "a control buffer too small for what arrived sets MSG_CTRUNC: the flag is cleared",
          "POSIX recvmsg(): MSG_CTRUNC, control data was truncated", ("format", "rights", "arguments"), MESSAGES),
    Fault("ctrunc-invented", "MSG_CTRUNC means something was cut: it is set on every message with descriptors",
          "POSIX recvmsg(): MSG_CTRUNC", ("format", "rights"), MESSAGES),
    Fault("cloexec-ignored", "MSG_CMSG_CLOEXEC makes received descriptors close-on-exec: the flag is dropped",
          "Linux recvmsg(2) MSG_CMSG_CLOEXEC; FreeBSD recv(2) MSG_CMSG_CLOEXEC", ("rights",), ("linux", "freebsd")),
    Fault("cloexec-forced", "without MSG_CMSG_CLOEXEC a received descriptor is not close-on-exec: it always is",
          "POSIX: a descriptor made by recvmsg() has FD_CLOEXEC clear unless asked", ("rights",), MESSAGES),
    Fault("peek-without-rights", "MSG_PEEK shows the descriptors of the message it peeks at: none arrive",
          "Linux unix_stream_read_generic/scm_fp_dup: a peek receives duplicates of the queued descriptors",
          ("rights",), LINUX),
    Fault("rights-limit-lowered", "the per-message limit of descriptors: sendmsg refuses more than 128 with EINVAL",
          "Linux include/net/scm.h SCM_MAX_FD 253; unix(7) EINVAL beyond it", ("rights", "format"), LINUX),
    Fault("rights-limit-raised", "more descriptors than the per-message limit are refused: sendmsg succeeds and "
          "leaves the ones over the limit behind", "unix(7): sendmsg fails EINVAL past SCM_MAX_FD", ("rights",), LINUX),
    Fault("empty-payload-dropped", "a message of zero bytes with descriptors is sent: it is silently discarded",
          "Linux unix_stream_sendmsg and unix_dgram_sendmsg queue an skb for an empty payload with rights",
          ("rights", "format"), LINUX),
    Fault("seqpacket-is-stream", "a SOCK_SEQPACKET socket keeps message boundaries: it is made a SOCK_STREAM one",
          "POSIX socket(): SOCK_SEQPACKET preserves record boundaries", ("rights", "format", "credentials"), MESSAGES),
    Fault("passrights-off-ignored", "SO_PASSRIGHTS 0 makes the receiver refuse descriptors: turning it off is "
          "ignored", "Linux unix(7) SO_PASSRIGHTS (6.16)", ("rights",), LINUX),

    # ---- credentials ------------------------------------------------------------------------------------------------
    Fault("creds-wrong-pid", "SCM_CREDENTIALS name the sender: the pid is the receiver's own",
          "unix(7) SCM_CREDENTIALS; FreeBSD unix(4) struct cmsgcred", ("credentials", "protocol"), LINUX_FREEBSD),
    Fault("creds-wrong-uid", "SCM_CREDENTIALS name the sender: the uid is off by one",
          "unix(7) SCM_CREDENTIALS; FreeBSD unix(4) struct cmsgcred", ("credentials", "protocol"), LINUX_FREEBSD),
    Fault("creds-wrong-gid", "SCM_CREDENTIALS name the sender: the gid is off by one",
          "unix(7) SCM_CREDENTIALS; FreeBSD unix(4) struct cmsgcred", ("credentials",), LINUX_FREEBSD),
    Fault("creds-forgery-accepted", "an unprivileged sender cannot state another identity: EPERM and ESRCH are "
          "answered by sending its real one", "unix(7): the kernel checks stated credentials (EPERM)",
          ("credentials",), LINUX),
    Fault("peercred-wrong-process", "SO_PEERCRED names the peer: the pid is the caller's",
          "unix(7) SO_PEERCRED; macOS LOCAL_PEERPID", ("credentials",), ("linux", "darwin")),
    Fault("passcred-ignored", "SO_PASSCRED asks for credentials on every message: the option is dropped",
          "unix(7) SO_PASSCRED", ("credentials", "protocol"), LINUX),
    Fault("accept-drops-passcred", "an accepted socket inherits SO_PASSCRED from its listener: it is cleared",
          "Linux unix_stream_connect copies the listener's flags (net/unix/af_unix.c)", ("credentials",), LINUX),

    # ---- the APUE protocol ------------------------------------------------------------------------------------------
    Fault("apue-status-altered", "the APUE status byte after the NUL arrives as sent: it arrives one higher",
          "APUE 3e section 17.4 send_err/recv_fd: the byte after the null is the status", ("protocol",), MESSAGES),

    # ---- byte-range locks -------------------------------------------------------------------------------------------
    Fault("ofd-degraded", "F_OFD_* commands take locks owned by the open file description: they take classic ones",
          "Linux fcntl(2) open file description locks; POSIX.1-2024 F_OFD_SETLK",
          ("locks", "lock_ranges", "lock_waiters", "duplication", "lock_histories"), LINUX),
    Fault("getlk-wrong-type", "F_GETLK names the type of the lock in the way: read and write are swapped",
          "POSIX fcntl(): F_GETLK describes the first lock that would prevent the request",
          ("locks", "lock_ranges", "lock_histories")),
    Fault("getlk-wrong-pid", "F_GETLK names the process that holds a classic lock: l_pid is off by one",
          "POSIX fcntl(): l_pid of the process holding the lock", ("locks",)),
    Fault("getlk-range-clipped", "a lock table merges an owner's adjacent ranges and F_GETLK reports the whole lock: "
          "it reports only the part inside the query, as a table that never merges would",
          "POSIX fcntl(): F_GETLK returns the lock's l_start and l_len; Linux fs/locks.c posix_lock_inode merges",
          ("lock_histories", "locks", "lock_ranges")),  # the histories must find a table that does not merge
    Fault("conflicts-unreported", "F_GETLK reports a conflicting lock: it always answers F_UNLCK",
          "POSIX fcntl(): F_GETLK", ("locks", "lock_ranges", "lock_histories")),
    Fault("lock-ebadf-as-einval", "a lock command on a descriptor that is not open fails EBADF: it fails EINVAL",
          "POSIX fcntl(): [EBADF]", ("arguments",)),
    Fault("classic-survives-close", "closing any descriptor of a file releases the process's classic locks on it: "
          "they are taken again through another open descriptor", "POSIX close(): all locks owned by the process on "
          "the file are removed", ("locks", "lock_histories")),
    Fault("ofd-released-by-close", "an OFD lock lasts until the last descriptor of its description closes: any close "
          "releases it", "Linux fcntl(2): open file description locks are released on the last close",
          ("locks", "duplication", "lock_histories"), LINUX),

    # ---- flock ------------------------------------------------------------------------------------------------------
    Fault("flock-released-by-close", "a flock lock lasts until the last descriptor of its description closes: any "
          "close releases it", "flock(2): the lock is released when all duplicate descriptors are closed",
          ("locks", "flock_modes", "lock_histories"), ("linux", "freebsd", "darwin")),
    Fault("flock-never-conflicts", "flock refuses a lock that conflicts: it always grants",
          "flock(2): EWOULDBLOCK", ("locks", "flock_modes", "lock_histories"), ("linux", "freebsd", "darwin")),
    Fault("flock-conflicts-with-fcntl", "flock and fcntl locks are independent: flock is refused over a classic lock",
          "Linux flock(2): flock() and fcntl() locks do not interact on local filesystems",
          ("locks", "lock_histories"), LINUX),
    Fault("flock-ewouldblock-as-eacces", "flock's conflict error is EWOULDBLOCK: it is EACCES",
          "flock(2): [EWOULDBLOCK]", ("locks", "flock_modes"), ("linux", "freebsd", "darwin")),

    # ---- waiters ----------------------------------------------------------------------------------------------------
    Fault("waiter-never-woken", "a blocked F_SETLKW, F_OFD_SETLKW or flock is granted when the conflict goes: it "
          "sleeps until a signal", "POSIX fcntl(): F_SETLKW waits until the lock can be applied; flock(2)",
          ("locks", "lock_waiters", "lock_histories")),

    # ---- duplication ------------------------------------------------------------------------------------------------
    Fault("dup-new-description", "dup and F_DUPFD share the open file description: they open the file again",
          "POSIX dup(): the new descriptor refers to the same open file description",
          ("locks", "flock_modes", "lock_histories"), LINUX),
    Fault("pidfd-getfd-no-cloexec", "pidfd_getfd's descriptor is close-on-exec: the flag is cleared",
          "pidfd_getfd(2): the close-on-exec flag is set on the returned descriptor", ("duplication",), LINUX),
    Fault("pidfd-getfd-new-description", "pidfd_getfd duplicates the target's open file description: a new one of "
          "the same file arrives", "pidfd_getfd(2): as if by SCM_RIGHTS, the same open file description",
          ("duplication",), LINUX),
)

BY_NAME = {fault.name: fault for fault in CATALOGUE}


def areas_of(faults) -> list[str]:
    """Every area the faults touch, in AREAS's order."""
    wanted = {area for fault in faults for area in fault.areas}
    return [area for area in AREAS if area in wanted]
