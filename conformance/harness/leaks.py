"""The check run around every case: no descriptor, child process or temporary file may outlive it.

`snapshot()` before the case, `check()` after its teardown. check() returns one line per leak and also
cleans up what it found (closes, kills and reaps, removes), so that one leaky case cannot spoil the next.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from ..platforms import constants
from . import children, fds
from .deadlines import DEFAULT_DEADLINE


@dataclass
class Snapshot:
    fds: dict
    temp_entries: frozenset
    foreign_children: frozenset


def _temp_entries(root: str) -> frozenset:
    try:
        return frozenset(os.listdir(root))
    except FileNotFoundError:
        return frozenset()


def become_subreaper() -> bool:
    """Where the OS allows it, adopt orphaned grandchildren so that check() can see and reap them.

    Linux: prctl(PR_SET_CHILD_SUBREAPER); FreeBSD: procctl(PROC_REAP_ACQUIRE). Never raises: without it the
    check still sees this process's own children.
    """
    c = constants()
    if c.PR_SET_CHILD_SUBREAPER is None and c.PROC_REAP_ACQUIRE is None:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if c.PR_SET_CHILD_SUBREAPER is not None:
            return libc.prctl(c.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        # int procctl(idtype_t idtype, id_t id, int cmd, void *data): id_t is 64 bits (sys/sys/_types.h __id_t),
        # so the argument types must be declared; P_PID is 0 (sys/sys/wait.h).
        procctl = libc.procctl
        procctl.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p)
        procctl.restype = ctypes.c_int
        return procctl(0, os.getpid(), c.PROC_REAP_ACQUIRE, None) == 0
    except (OSError, AttributeError):  # no such function in this libc
        return False


def child_pids() -> set[int]:
    """Every child of this process, running or zombie, by the cheapest means the OS offers."""
    pattern = constants().CHILDREN_FILE
    files = glob.glob(pattern.format(tid="*")) if pattern else []
    if files:  # none where the kernel lacks CONFIG_PROC_CHILDREN: then ask as the other systems do
        found: set[int] = set()
        for path in files:
            try:
                with open(path) as f:
                    found.update(int(p) for p in f.read().split())
            except OSError:
                pass
        return found
    zombies: set[int] = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return zombies  # no child left at all: the common case costs one syscall
        if not pid:
            break  # some child is still running
        zombies.add(pid)  # reaped just now; the caller reports it
    # A child is running: ask ps for our children (BSD, macOS and illumos ps all accept -A -o). One -o per
    # column: in "pid=,ppid=" POSIX ps (and the BSDs', macOS's and illumos's) reads everything after the first "="
    # as pid's header, so ppid would never be printed (POSIX.1-2024 XCU ps, -o: "the rest of the characters in
    # the argument shall be used as the header text").
    try:
        ps = subprocess.Popen(["ps", "-A", "-o", "pid=", "-o", "ppid="], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return zombies
    try:
        out, _ = ps.communicate(timeout=DEFAULT_DEADLINE)
    except subprocess.SubprocessError:
        ps.kill()  # and reap it, or it would be the next check's leaked child
        ps.communicate()
        return zombies
    me = os.getpid()
    listed = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == str(me) and parts[0].isdigit():
            listed.add(int(parts[0]))
    return zombies | (listed - {ps.pid})


def snapshot(temp_root: str) -> Snapshot:
    return Snapshot(fds.open_fds(), _temp_entries(temp_root), frozenset(child_pids()))


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def check(before: Snapshot, temp_root: str) -> list[str]:
    """What the case left behind, one line each; everything found is cleaned up."""
    problems = []
    for pid in children.kill_all():
        problems.append(f"child process {pid} was still alive or unreaped (killed and reaped)")
    for pid in sorted(child_pids() - before.foreign_children):
        problems.append(f"child process {pid} not started through the harness was left behind (killed and reaped)")
        _kill_and_reap(pid)
    now = fds.open_fds()
    for fd, ident in sorted(now.items()):
        if before.fds.get(fd) != ident:
            problems.append(f"descriptor leaked: {fds.describe(fd)} (closed)")
            try:
                os.close(fd)
            except OSError:
                pass
    for name in sorted(_temp_entries(temp_root) - before.temp_entries):
        path = os.path.join(temp_root, name)
        problems.append(f"temporary file left behind: {path} (removed)")
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
    return problems
