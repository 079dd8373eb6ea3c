#!/usr/bin/env python3
"""Reproducer: a history of file locks where this platform's answer differs from what the references say.

History (P<n> is the n-th process, a new one after its exit(); a, b, ... its descriptors of one file; send(x, n, y)
sends x with SCM_RIGHTS to P<n>, where it is y; fork(n) forks a child that takes the place of P<n>, which exits
first; exec() execs this file again in the process, open(x, cloexec) marks x close-on-exec; wait() is a lock that
waits, F_SETLKW or flock without LOCK_NB, and "(sleeps)" marks one the references say must wait; "then P<n> is
granted" a waiter they say this step wakes):
  P1 open(a)
  P1 lock(a, posix, read, 2, 3)
Check: a new description's non-blocking flock
Seen: a new description's flock(write) was granted, the model says refused
Found by: conformance explore (30 histories, seed 20261206-locks-1).

Exits 1 when this platform answers as seen, 0 when it answers as the references say.
References:
  POSIX.1-2024 XSH fcntl(): record locking, F_GETLK, F_SETLK, F_OFD_GETLK, F_OFD_SETLK
  Linux fcntl(2): open file description locks; flock(2); Linux fs/locks.c posix_lock_inode, flock_lock_inode
  FreeBSD sys/kern/kern_lockf.c lf_setlock, lf_getlock
  Linux fs/locks.c lock_get_status (/proc/locks, proc_locks(5)): the table of held locks and waiters
The model's rules (conformance/explore/lockmodel.py) are quoted at the end of this file.
Standard library only (Python 3.9 or later); the fcntl numbers and struct flock layout are this platform's.
"""

import array
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile

STEPS = [[1, 'open', ['a'], False, []], [1, 'lock', ['a', 'posix', 'read', 2, 3], False, []]]
CHECK = ['flock', 'write', False]
COMMANDS = {'posix': (5, 6, 7), 'ofd': (36, 37, 38)}  # family -> (query, set-lock, set-lock-and-wait)
TABLE = '/proc/locks'  # the kernel's table of file locks, where it lists waiters (Linux: fs/locks.c lock_get_status)
GRANTED_WITHIN = 10  # seconds a woken waiter has to answer
QUIET_FOR = 1  # seconds a waiter must stay silent where there is no table to ask
TYPES = {'read': 0, 'write': 1, 'unlock': 2}  # read, write, unlock -> l_type
FLOCK_FORMAT, FLOCK_FIELDS = 'hhqqi0q', ['l_type', 'l_whence', 'l_start', 'l_len', 'l_pid']
ACTORS = 2


def pack(kind, start, length):
    fields = dict.fromkeys(FLOCK_FIELDS, 0)
    fields.update(l_type=TYPES[kind], l_whence=os.SEEK_SET, l_start=start, l_len=length)
    return struct.pack(FLOCK_FORMAT, *(fields[name] for name in FLOCK_FIELDS))


def step(path, held, inbox, operation, args):
    try:
        if operation == "open":  # Python opens close-on-exec: only a "cloexec" open keeps the mark
            held[args[0]] = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            os.set_inheritable(held[args[0]], "cloexec" not in args[1:])
        elif operation == "dup":  # as dup(2): not close-on-exec
            held[args[1]] = fcntl.fcntl(held[args[0]], fcntl.F_DUPFD, 0)
        elif operation == "close":
            os.close(held.pop(args[0]))
        elif operation == "send":  # SCM_RIGHTS to the other actor's inbox
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [held[args[0]]]))],
                               0, os.path.join(os.path.dirname(path), f"in{args[1]}"))
        elif operation == "take":
            _, fds, _, _ = socket.recv_fds(inbox, 1, 1)
            held[args[0]] = fds[0]
        elif operation in ("lock", "wait", "unlock"):
            name, family = args[0], args[1]
            kind, start, length = ("unlock", args[2], args[3]) if operation == "unlock" else (args[2], args[3], args[4])
            if family == "flock":
                mode = {"read": fcntl.LOCK_SH, "write": fcntl.LOCK_EX, "unlock": fcntl.LOCK_UN}[kind]
                fcntl.flock(held[name], mode if operation == "wait" else mode | fcntl.LOCK_NB)
            else:
                command = COMMANDS[family][2 if operation == "wait" else 1]
                fcntl.fcntl(held[name], command, pack(kind, start, length))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return None


def actor(path, inbox, commands, answers, held):
    for line in commands:
        operation, args = json.loads(line)
        if operation == "exec":
            exec_image(path, inbox, commands, answers, held)
        if operation == "fork":
            answers.write(json.dumps(fork(path, inbox, commands, answers, held, args[0])) + "\n")
            answers.flush()
            continue
        answers.write(json.dumps(step(path, held, inbox, operation, args)) + "\n")
        answers.flush()
    os._exit(0)  # its descriptors close, and its locks go


def fork(path, inbox, commands, answers, held, number):
    """Fork a child that takes the place of actor `number`, served by the two pipe ends waiting in the inbox; its
    pid. SIGCHLD is ignored from then on, so the kernel reaps the children of this process when they end."""
    _, fds, _, _ = socket.recv_fds(inbox, 1, 2)
    child_inbox = bind_inbox(path, number)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        os.close(commands.fileno()), os.close(answers.fileno()), inbox.close()
        actor(path, child_inbox, os.fdopen(fds[0]), os.fdopen(fds[1], "w"), held)
    child_inbox.close(), os.close(fds[0]), os.close(fds[1])
    return pid


def bind_inbox(path, number):
    address = os.path.join(os.path.dirname(path), f"in{number}")
    if os.path.exists(address):
        os.unlink(address)
    inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.bind(address)
    inbox.settimeout(10)  # a descriptor the kernel lost is an error, not a hang
    return inbox


def exec_image(path, inbox, commands, answers, held):
    """execve this file again in this process; the new image takes back the descriptors the exec left open."""
    state = {name: [fd, os.fstat(fd).st_ino] for name, fd in held.items()}
    channels = [inbox.fileno(), commands.fileno(), answers.fileno()]
    for fd in channels:
        os.set_inheritable(fd, True)
    os.execv(sys.executable, [sys.executable, "-I", __file__, "--actor", json.dumps([path, channels, state])])


def after_exec(argument):
    path, (inbox, commands, answers), state = json.loads(argument)
    held = {}
    for name, (fd, ino) in state.items():
        try:
            if os.fstat(fd).st_ino == ino:
                held[name] = fd
        except OSError:  # closed by the exec
            pass
    inbox = socket.socket(fileno=inbox)
    inbox.settimeout(10)
    commands, answers = os.fdopen(commands), os.fdopen(answers, "w")
    for f in (inbox, commands, answers):
        os.set_inheritable(f.fileno(), False)
    answers.write(json.dumps(sorted(held)) + "\n")  # the exec's answer: the names kept
    answers.flush()
    actor(path, inbox, commands, answers, held)


def start(path, number, others):
    """A new process for actor `number`, its inbox bound first: (pid, commands, answers, None: no actor forked it).
    It closes its copies of the other actors' pipes, or an actor would never see the end of its commands."""
    inbox = bind_inbox(path, number)
    from_parent, to_actor = os.pipe()
    from_actor, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_actor), os.close(from_actor)
        for other in others:
            if other is not None:
                os.close(other[1].fileno()), os.close(other[2].fileno())
        actor(path, inbox, os.fdopen(from_parent), os.fdopen(to_parent, "w"), {})
    inbox.close(), os.close(from_parent), os.close(to_parent)
    return pid, os.fdopen(to_actor, "w"), os.fdopen(from_actor), None


def start_forked(path, channels, parent, number):
    """Actor `parent` forks a child to be actor `number`: (pid, commands, answers, parent)."""
    from_parent, to_actor = os.pipe()
    from_actor, to_parent = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendmsg([b"c"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [from_parent, to_parent]))],
                     0, os.path.join(os.path.dirname(path), f"in{parent}"))
    os.close(from_parent), os.close(to_parent)
    pid = ask(channels[parent], "fork", [number])
    return pid, os.fdopen(to_actor, "w"), os.fdopen(from_actor), parent


def tell(channel, operation, args):
    channel[1].write(json.dumps([operation, args]) + "\n")
    channel[1].flush()


def answer(channel, timeout=None):
    """The actor's answer (None: success, or an errno name); "no answer" if none comes within timeout."""
    if timeout is not None and not select.select([channel[2]], [], [], timeout)[0]:
        return "no answer"
    return json.loads(channel[2].readline())


def ask(channel, operation, args):
    """An answer within GRANTED_WITHIN, or "no answer": a call the references say returns at once may sleep here."""
    tell(channel, operation, args)
    return answer(channel, GRANTED_WITHIN)


def end(channel, asleep=False):
    if channel[3] is None:  # this process's child
        if asleep:  # it would never read the end of its commands
            os.kill(channel[0], signal.SIGKILL)
        channel[1].close(), channel[2].close()
        os.waitpid(channel[0], 0)
        return
    # an actor's child, reaped by the kernel for it: ended when its answers end (signalled only before that)
    channel[1].close()
    if asleep or not select.select([channel[2]], [], [], GRANTED_WITHIN)[0]:
        os.kill(channel[0], signal.SIGKILL)
    while channel[2].read(65536):
        pass
    channel[2].close()
    for _ in range(1000):  # its answers end a little before it exits: wait until the kernel has reaped it
        try:
            os.kill(channel[0], 0)
        except ProcessLookupError:
            break
        select.select([], [], [], 0.001)


def depth(channels, number):
    channel = channels[number]
    return 0 if channel is None or channel[3] is None else 1 + depth(channels, channel[3])


def table_waiters(path):
    """The waiters the lock table lists on this file, as (class, type, pid of a classic one, start, end)."""
    st = os.stat(path)
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open(TABLE) as f:
        rows = [line.split() for line in f]
    return sorted([r[2], r[4], r[5] if r[2] == "POSIX" else "", r[7], r[8]] for r in rows
                  if len(r) > 8 and r[1] == "->" and r[6] == ident)


def check(path, pids, channels):
    """What this process (a new description, holding no lock) sees, and whether the references allow it."""
    if CHECK[0] == "waiting":  # a waiter that must still sleep: it must not answer
        seen = answer(channels[CHECK[1]], QUIET_FOR)
        return seen, seen == "no answer"
    if CHECK[0] == "table":
        expected = sorted([c, t, str(pids[int(pid)]) if pid else "", s, e] for c, t, pid, s, e in CHECK[1])
        for _ in range(200):  # a waiter may not have reached its call yet, or be between two sleeps
            seen = table_waiters(path)
            if seen == expected:
                break
            select.select([], [], [], 0.01)
        return seen, seen == expected
    fd = os.open(path, os.O_RDWR)
    try:
        if CHECK[0] == "flock":
            mode = fcntl.LOCK_SH if CHECK[1] == "read" else fcntl.LOCK_EX
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                seen = True
            except BlockingIOError:
                seen = False
            return seen, seen == CHECK[2]
        _, family, kind, start, length, allowed = CHECK
        reply = dict(zip(FLOCK_FIELDS, struct.unpack(FLOCK_FORMAT, fcntl.fcntl(fd, COMMANDS[family][0],
                                                                                  pack(kind, start, length)))))
        if reply["l_type"] == TYPES["unlock"]:
            seen = None
        else:
            kind_seen = {v: k for k, v in TYPES.items()}.get(reply["l_type"], reply["l_type"])
            seen = [kind_seen, reply["l_start"], reply["l_len"], pids.get(reply["l_pid"], reply["l_pid"])]
        return seen, seen in allowed
    finally:
        os.close(fd)


def main():
    with tempfile.TemporaryDirectory(prefix="locks-") as directory:
        path = os.path.join(directory, "file")
        open(path, "w").close()
        channels = [None] * ACTORS
        asleep = [False] * ACTORS
        for number in range(ACTORS):
            channels[number] = start(path, number, channels)
        try:
            for index, (number, operation, args, sleeps, granted) in enumerate(STEPS):
                last = index == len(STEPS) - 1
                if operation == "exit":
                    end(channels[number], asleep[number])
                    channels[number], asleep[number] = None, False
                    channels[number] = start(path, number, channels)
                    got = None
                elif operation == "fork":
                    end(channels[args[0]], asleep[args[0]])
                    channels[args[0]], asleep[args[0]] = None, False
                    channels[args[0]] = start_forked(path, channels, number, args[0])
                    got = None
                elif operation == "send":
                    got = ask(channels[number], "send", args) or ask(channels[args[1]], "take", [args[2]])
                elif sleeps:
                    tell(channels[number], operation, args)
                    asleep[number], got = True, None
                else:
                    got = ask(channels[number], operation, args)
                    asleep[number] = got == "no answer"
                if CHECK[0] == "kept" and last:
                    print(f"after the exec: {got}")
                    return 0 if got == CHECK[1] else 1
                if CHECK[0] == "answer" and last:
                    conflict = got in ("EAGAIN", "EACCES", "EWOULDBLOCK")
                    fine = conflict == CHECK[1] and (got is None or conflict)
                    print(f"the last step answered {got or 'success'}")
                    return 0 if fine else 1
                for waiter in granted:
                    got = answer(channels[waiter], GRANTED_WITHIN)
                    asleep[waiter] = got == "no answer"
                    if CHECK[0] == "granted" and last and waiter == CHECK[1]:
                        print(f"P{waiter}'s wait answered {got or 'success'}")
                        return 0 if got is None else 1
            if CHECK[0] in ("waiting", "table"):
                seen, fine = check(path, [channel[0] for channel in channels], channels)
                print(f"{CHECK[0]} check: seen {seen}" + ("" if fine else ", the references say otherwise"))
                return 0 if fine else 1
            seen, fine = check(path, {channel[0]: number for number, channel in enumerate(channels)}, channels)
            print(f"{CHECK[0]} check: seen {seen}" + ("" if fine else f", the references allow {CHECK[-1]}"))
            return 0 if fine else 1
        finally:
            for number in sorted(range(ACTORS), key=lambda n: depth(channels, n), reverse=True):
                if channels[number] is not None:  # a forked process ends before the one that forked it
                    end(channels[number], asleep[number])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--actor"]:  # an actor's new image, after an exec step
        after_exec(sys.argv[2])
    sys.exit(main())

# The model's rules:
# A reference model of the three lock families, written from the documents, for checking random histories.
#
# Owners (POSIX.1-2024 fcntl, "Record locking"; Linux fcntl(2) "Open file description locks"; flock(2)):
# - a classic POSIX lock (`posix`) belongs to a process: any close by that process of any descriptor of the file
#   releases all its locks on the file (POSIX fcntl: "All locks associated with a file for a given process shall be
#   removed when a file descriptor for that file is closed by that process");
# - an OFD lock (`ofd`) and a flock lock (`flock`) belong to an open file description: they go when its last
#   descriptor is closed, and a close of another descriptor of the file leaves them (Linux fcntl(2), flock(2)).
#
# Ranges (POSIX fcntl): a lock covers [start, start + length), length 0 meaning "to the end of the file, however far
# it grows". An owner's new lock replaces, over its range, what that owner held of the same family (splitting a lock
# it cuts into); an unlock removes that range; the owner's locks of one type that overlap or touch are then one lock
# (Linux fs/locks.c posix_lock_inode merges them; FreeBSD kern_lockf.c lf_setlock does too): F_GETLK reports the
# merged segment. A flock lock covers the whole file; taking it in the other mode first removes the old one, so a
# conversion that fails leaves none (flock(2): "the existing lock is first removed").
#
# Processes (POSIX fork, exec): a forked child's descriptors refer to its parent's open file descriptions, so it
# shares their OFD and flock locks, and "File locks set by the parent process shall not be inherited by the child
# process", so it has no classic lock; exec closes the descriptors marked FD_CLOEXEC (open with O_CLOEXEC; not those
# of dup or received with SCM_RIGHTS without MSG_CMSG_CLOEXEC) and keeps the others, and the process keeps its classic
# locks (Linux fcntl(2): "preserved across an execve(2)"), save that a close-on-exec close is a close like any other.
#
# Conflicts: two locks conflict when their owners differ, their ranges overlap, at least one is a write lock and the
# families meet. `posix` and `ofd` always meet (POSIX.1-2024: OFD and process-associated locks conflict with each
# other). Whether `flock` meets the fcntl families is the platform's choice (`flock_vs_fcntl`: "independent" on
# Linux's local filesystems, "conflicting" on FreeBSD and macOS), a parameter of the model, never a branch on the OS.
#
# Waiters (POSIX fcntl F_SETLKW: "if a shared or exclusive lock is blocked by other locks, the thread shall wait until
# the request can be satisfied"; flock(2) without LOCK_NB): a request that conflicts leaves its process asleep,
# holding nothing new; a flock conversion has already removed the old lock (flock(2)). After every step each waiter
# whose request no longer conflicts is granted, as if it were taken then, the earliest first; a waiter whose process
# ends is gone. Which of two waiters that conflict with each other gets the lock when both become grantable at once
# (or which of one description's two waiters, of different types over a common byte, is granted last and so decides
# the type there) is the scheduler's choice, not a rule: `raced` marks that state, and histories avoid it. A request
# whose wait could never end (its blocker's owner is asleep itself) is `stuck()`, and histories avoid it too: only
# classic locks detect such a cycle (EDEADLK, POSIX "may"), OFD and flock waiters would sleep for good.
#
# A query (F_GETLK, F_OFD_GETLK) from another owner reports one lock that conflicts with the asked one, as merged,
# with l_pid the holder's pid for a `posix` lock and -1 for an `ofd` lock (Linux fcntl(2)), or F_UNLCK when none
# does; where several conflict, any of them may be reported.
