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
    """Where the OS allows it, adopt orphaned grandchildren so that check() can see and reap them."""
    option = constants().PR_SET_CHILD_SUBREAPER
    if option is None:
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(option, 1, 0, 0, 0) == 0


def child_pids() -> set[int]:
    """Every child of this process, running or zombie, by the cheapest means the OS offers."""
    pattern = constants().CHILDREN_FILE
    if pattern:
        found: set[int] = set()
        for path in glob.glob(pattern.format(tid="*")):
            try:
                with open(path) as f:
                    found.update(int(p) for p in f.read().split())
            except OSError:
                pass
        return found
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return set()  # no children at all: the common case costs one syscall
    if pid:
        return {pid}  # a zombie, reaped just now; the caller reports it
    # A child is running: ask ps for our children (BSD, macOS and illumos ps all accept -A -o).
    try:
        ps = subprocess.Popen(["ps", "-A", "-o", "pid=,ppid="], stdout=subprocess.PIPE, text=True)
        out, _ = ps.communicate(timeout=10)
    except (OSError, subprocess.SubprocessError):
        return set()
    me = os.getpid()
    listed = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == str(me) and parts[0].isdigit():
            listed.add(int(parts[0]))
    return listed - {ps.pid}


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
