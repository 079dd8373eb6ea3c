"""The check run around every case: no descriptor, child process or temporary file may outlive it.

`snapshot()` before the case, `check()` after its teardown. check() returns one line per leak and also
cleans up what it found (closes, kills and reaps, removes), so that one leaky case cannot spoil the next.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass

from ..platforms import process
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

    Never raises: without it the check still sees this process's own children (platforms.process says how).
    """
    return process.become_subreaper()


def child_pids() -> set[int]:
    """Every child of this process, running or zombie, by the cheapest means the OS offers."""
    return process.child_pids(DEFAULT_DEADLINE)


def reap_every_child() -> None:
    """Kill and reap whatever is left of a run's processes: a worker's descendants that its death orphaned come to
    this process, the run's subreaper. After a clean run there is nothing here; after an interrupt, stragglers."""
    children.kill_all()
    for _ in range(100):  # a killed process's own orphans come next; bounded all the same
        pids = child_pids()
        if not pids:
            return
        for pid in pids:
            kill_and_reap(pid)


def _what(pid: int) -> str:
    """What the process is, where /proc shows it: its command line, or that it is a zombie (an orphan adopted by this
    subreaper after it ended shows nothing else), so that a leftover can be traced to whoever started it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
    name, _, rest = stat.partition(b" (")[2].rpartition(b")")
    if rest.split()[:1] == [b"Z"]:
        return f": a zombie ({name.decode(errors='replace')})"  # its name is all a zombie keeps
    return f": {command[:200]}" if command else ""


def snapshot(temp_root: str) -> Snapshot:
    return Snapshot(fds.open_fds(), _temp_entries(temp_root), frozenset(child_pids()))


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def check(before: Snapshot, temp_root: str, descriptors: bool = True) -> list[str]:
    """What the case left behind, one line each; everything found is cleaned up.

    descriptors=False leaves the descriptors alone: after an interrupt the snapshot is stale (pytest has already
    given its captured standard output and error back), and a descriptor that differs from it may be the terminal's.
    """
    problems = []
    for pid in children.kill_all():
        problems.append(f"child process {pid} was still alive or unreaped (killed and reaped)")
    for pid in sorted(child_pids() - before.foreign_children - children.kept_children()):
        problems.append(f"child process {pid} not started through the harness was left behind (killed and reaped)"
                        + _what(pid))
        kill_and_reap(pid)
    now = fds.open_fds() if descriptors else {}
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
