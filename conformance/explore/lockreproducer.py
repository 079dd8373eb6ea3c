"""A lock history the kernel and the model disagree on, as one standalone Python file: it forks one process per
actor, replays the history on a new file, makes the check that differed and exits 1 when the platform answers as
seen, 0 when it answers as the references say. The platform's fcntl command numbers and struct flock layout are
written into the file, as this platform has them."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from conformance import locks
from conformance.platforms import constants

from .lockmodel import __doc__ as MODEL_TEXT

REFERENCES = (
    "POSIX.1-2024 XSH fcntl(): record locking, F_GETLK, F_SETLK, F_OFD_GETLK, F_OFD_SETLK",
    "Linux fcntl(2): open file description locks; flock(2); Linux fs/locks.c posix_lock_inode, flock_lock_inode",
    "FreeBSD sys/kern/kern_lockf.c lf_setlock, lf_getlock",
)

_TEMPLATE = '''#!/usr/bin/env python3
"""Reproducer: a history of file locks where this platform's answer differs from what the references say.

History (P<n> is the n-th process, a new one after its exit(); a, b, ... its descriptors of one file; send(x, n, y)
sends x with SCM_RIGHTS to P<n>, where it is y):
{history}
Check: {check_text}
Seen: {problem}
Found by: conformance explore ({origin}).

Exits 1 when this platform answers as seen, 0 when it answers as the references say.
References:
{references}
The model's rules (conformance/explore/lockmodel.py) are quoted at the end of this file.
Standard library only (Python 3.9 or later); the fcntl numbers and struct flock layout are this platform's.
"""

import array
import errno
import fcntl
import json
import os
import socket
import struct
import sys
import tempfile

STEPS = {steps}
CHECK = {check}
COMMANDS = {commands}  # family -> (query, set-lock)
TYPES = {types}  # read, write, unlock -> l_type
FLOCK_FORMAT, FLOCK_FIELDS = {flock_format!r}, {flock_fields!r}
ACTORS = {actors}


def pack(kind, start, length):
    fields = dict.fromkeys(FLOCK_FIELDS, 0)
    fields.update(l_type=TYPES[kind], l_whence=os.SEEK_SET, l_start=start, l_len=length)
    return struct.pack(FLOCK_FORMAT, *(fields[name] for name in FLOCK_FIELDS))


def step(path, held, inbox, operation, args):
    try:
        if operation == "open":
            held[args[0]] = os.open(path, os.O_RDWR)
        elif operation == "dup":
            held[args[1]] = os.dup(held[args[0]])
        elif operation == "close":
            os.close(held.pop(args[0]))
        elif operation == "send":  # SCM_RIGHTS to the other actor's inbox
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [held[args[0]]]))],
                               0, os.path.join(os.path.dirname(path), f"in{{args[1]}}"))
        elif operation == "take":
            _, fds, _, _ = socket.recv_fds(inbox, 1, 1)
            held[args[0]] = fds[0]
        elif operation in ("lock", "unlock"):
            name, family = args[0], args[1]
            kind, start, length = (args[2], args[3], args[4]) if operation == "lock" else ("unlock", args[2], args[3])
            if family == "flock":
                mode = {{"read": fcntl.LOCK_SH, "write": fcntl.LOCK_EX, "unlock": fcntl.LOCK_UN}}[kind]
                fcntl.flock(held[name], mode | fcntl.LOCK_NB)
            else:
                fcntl.fcntl(held[name], COMMANDS[family][1], pack(kind, start, length))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return None


def actor(path, inbox, commands, answers):
    held = {{}}
    for line in commands:
        operation, args = json.loads(line)
        answers.write(json.dumps(step(path, held, inbox, operation, args)) + "\\n")
        answers.flush()
    os._exit(0)  # its descriptors close, and its locks go


def start(path, number, others):
    """A new process for actor `number`, its inbox bound first: (pid, commands, answers). It closes its copies of
    the other actors' pipes, or an actor would never see the end of its commands."""
    address = os.path.join(os.path.dirname(path), f"in{{number}}")
    if os.path.exists(address):
        os.unlink(address)
    inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.bind(address)
    inbox.settimeout(10)  # a descriptor the kernel lost is an error, not a hang
    from_parent, to_actor = os.pipe()
    from_actor, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_actor), os.close(from_actor)
        for other in others:
            if other is not None:
                os.close(other[1].fileno()), os.close(other[2].fileno())
        actor(path, inbox, os.fdopen(from_parent), os.fdopen(to_parent, "w"))
    inbox.close(), os.close(from_parent), os.close(to_parent)
    return pid, os.fdopen(to_actor, "w"), os.fdopen(from_actor)


def ask(channel, operation, args):
    commands, answers = channel[1], channel[2]
    commands.write(json.dumps([operation, args]) + "\\n")
    commands.flush()
    return json.loads(answers.readline())


def end(channel):
    channel[1].close(), channel[2].close()
    os.waitpid(channel[0], 0)


def check(path, pids):
    """What this process (a new description, holding no lock) sees, and whether the references allow it."""
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
            kind_seen = {{v: k for k, v in TYPES.items()}}.get(reply["l_type"], reply["l_type"])
            seen = [kind_seen, reply["l_start"], reply["l_len"], pids.get(reply["l_pid"], reply["l_pid"])]
        return seen, seen in allowed
    finally:
        os.close(fd)


def main():
    with tempfile.TemporaryDirectory(prefix="locks-") as directory:
        path = os.path.join(directory, "file")
        open(path, "w").close()
        channels = [None] * ACTORS
        for number in range(ACTORS):
            channels[number] = start(path, number, channels)
        try:
            for index, (number, operation, args) in enumerate(STEPS):
                if operation == "exit":
                    end(channels[number])
                    channels[number] = None
                    channels[number] = start(path, number, channels)
                    answer = None
                elif operation == "send":
                    answer = ask(channels[number], "send", args) or ask(channels[args[1]], "take", [args[2]])
                else:
                    answer = ask(channels[number], operation, args)
                if CHECK[0] == "answer" and index == len(STEPS) - 1:
                    conflict = answer in ("EAGAIN", "EACCES", "EWOULDBLOCK")
                    fine = conflict == CHECK[1] and (answer is None or conflict)
                    print(f"the last step answered {{answer or 'success'}}")
                    return 0 if fine else 1
            seen, fine = check(path, {{channel[0]: number for number, channel in enumerate(channels)}})
            print(f"{{CHECK[0]}} check: seen {{seen}}" + ("" if fine else f", the references allow {{CHECK[-1]}}"))
            return 0 if fine else 1
        finally:
            for channel in channels:
                if channel is not None:
                    end(channel)


if __name__ == "__main__":
    sys.exit(main())

# The model's rules:
{model_text}
'''


def _commands() -> dict:
    found = {}
    for name in ("posix", "ofd"):
        try:
            getlk, setlk, _ = locks.family(name).operations.numbers()
        except locks.LockFamilyUnavailable:
            continue
        found[name] = (getlk, setlk)
    return found


def name_for(history: tuple) -> str:
    digest = hashlib.sha256(repr(history).encode()).hexdigest()[:10]
    return f"locks-{len(history)}steps-{digest}.py"


def render(history: tuple, check: tuple, problem: str, origin: str) -> str:
    c = constants()
    kinds = {"read": fcntl.F_RDLCK, "write": fcntl.F_WRLCK, "unlock": fcntl.F_UNLCK}
    check_text = {"answer": "the last step's own answer", "flock": "a new description's non-blocking flock",
                  "query": "a query from a new description"}[check[0]]
    return _TEMPLATE.format(
        history="\n".join(f"  {step.text()}" for step in history), check_text=check_text, problem=problem,
        origin=origin, references="\n".join(f"  {r}" for r in REFERENCES),
        steps=repr([[s.actor, s.operation, list(s.args)] for s in history]), check=repr(list(check)),
        commands=repr(_commands()), types=repr(kinds), flock_format=c.FLOCK_FORMAT,
        flock_fields=list(c.FLOCK_FIELDS), actors=1 + max(s.actor for s in history),
        model_text="\n".join(f"# {line}".rstrip() for line in MODEL_TEXT.strip().splitlines()))


def write(directory: Path, history: tuple, check: tuple, problem: str, origin: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name_for(history)
    path.write_text(render(history, check, problem, origin))
    os.chmod(path, 0o755)
    return path
