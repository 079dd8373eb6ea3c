"""The mounts a chroot needs, made in order and undone in reverse on every path, and the processes inside ended first.

The userland sees this machine's kernel interfaces as a native process does: a fresh /proc (its own view of
/proc/self), and /sys and /dev with the filesystems the suite uses under /dev (pts, shm, mqueue) bound where this
machine has them mounted; one this machine lacks is left out, so both runs lack it alike.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..interruption import Interruption, run_reaped
from ..platforms import detect

# Bound when this machine has a filesystem mounted there, in this order (a parent before its children).
DEV_MOUNTS = ("/dev/pts", "/dev/shm", "/dev/mqueue")
UMOUNT_TRIES = 5
SETTLE = 0.2  # seconds between tries of an unmount the kernel still finds busy


class MountError(Exception):
    """A mount or unmount failed; one line."""


@dataclass(frozen=True)
class Mount:
    target: Path
    options: tuple  # what mount(8) gets before the target

    def command(self, mount: str) -> list[str]:
        return [mount, *self.options, str(self.target)]


def plan(root: Path, mounted_here: set[str] | None = None) -> list[Mount]:
    """What to mount under root, in order; ``mounted_here``: this machine's mount points (default: its table)."""
    if mounted_here is None:
        mounted_here = {point for point, _ in detect.mount_table()}
    steps = [Mount(root / "proc", ("-t", "proc", "proc")), Mount(root / "sys", ("--bind", "/sys")),
             Mount(root / "dev", ("--bind", "/dev"))]
    steps += [Mount(root / path.lstrip("/"), ("--bind", path)) for path in DEV_MOUNTS if path in mounted_here]
    return steps


Runner = Callable[[list], "tuple[int, str]"]


def run_command(argv: list) -> tuple[int, str]:
    """argv's exit status and its error output's last line."""
    done = run_reaped(argv, stdin=subprocess.DEVNULL)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return done.returncode, lines[-1] if lines else ""


@contextlib.contextmanager
def mounted(steps: list[Mount], tools, run: Runner = run_command, proc: str = "/proc") -> Iterator[None]:
    """The mounts of ``steps`` for the body; on the way out, however it is left (an error, a signal), every process
    whose root is inside is ended and every mount made is undone, last first."""
    made: list[Mount] = []
    root = steps[0].target.parent if steps else None
    try:
        for step in steps:
            step.target.mkdir(parents=True, exist_ok=True)
            status, error = run(step.command(tools.mount))
            if status != 0:
                raise MountError(f"{' '.join(step.command('mount'))}: {error or f'exit status {status}'}")
            made.append(step)
        yield
    finally:
        interruption = Interruption.of_this_process()
        cleaning, interruption.cleaning_up = interruption.cleaning_up, True  # a second signal must not cut this short
        try:
            if root is not None:
                end_processes(root, proc)
            problems = [problem for step in reversed(made) if (problem := unmount(step.target, tools, run))]
        finally:
            interruption.cleaning_up = cleaning
        if problems:
            raise MountError("; ".join(problems))


def unmount(target: Path, tools, run: Runner = run_command) -> str | None:
    """None once target is unmounted, else why not. A mount still busy (a process that was ending) is tried again,
    then detached lazily: a file the kernel keeps for ever holds it (a socket bound there, left in flight by the
    collector's defect the references record, pins its mount until the machine restarts), and the mount leaves the
    tree at once, to be freed when the last such file goes."""
    error = ""
    for attempt in range(UMOUNT_TRIES):
        status, error = run([tools.umount, str(target)])
        if status == 0:
            return None
        time.sleep(SETTLE * (attempt + 1))
    status, lazy_error = run([tools.umount, "--lazy", str(target)])
    if status == 0:
        print(f"conformance: compat: {target} stayed busy ({error}): detached lazily", file=sys.stderr, flush=True)
        return None
    return f"umount {target}: {lazy_error or error}"


def processes_in(root: Path, proc: str = "/proc") -> list[int]:
    """The pids whose root directory is root or inside it (their /proc/<pid>/root link)."""
    real = os.path.realpath(root)
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            where = os.readlink(os.path.join(proc, entry, "root"))
        except OSError:
            continue  # gone, or a kernel thread
        if where == real or where.startswith(real.rstrip("/") + "/"):
            found.append(int(entry))
    return found


def end_processes(root: Path, proc: str = "/proc", grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace`` seconds, to every process inside root; the pids that were there."""
    first = processes_in(root, proc)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        pids = processes_in(root, proc)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = processes_in(root, proc)
        if not pids:
            break
    return first


def mounts_under(path: Path) -> list[str]:
    """This machine's mount points at or under path, deepest last."""
    real = os.path.realpath(path)
    return [point for point, _ in detect.mount_table()
            if point == real or point.startswith(real.rstrip("/") + "/")]


def remove_tree(path: Path, tools=None, run: Runner = run_command) -> None:
    """Remove a userland left by an earlier build. Never with anything mounted inside: rmtree would go down into a
    bound /dev and remove this machine's device nodes. What is mounted there is unmounted first, or nothing is
    removed."""
    if not path.exists():
        return
    left = mounts_under(path)
    if left and tools is not None:
        end_processes(path)
        for point in reversed(left):
            unmount(Path(point), tools, run)
        left = mounts_under(path)
    if left:
        raise MountError(f"{path} still has {', '.join(left)} mounted: unmount them, then run again")
    shutil.rmtree(path)


def chroot_environment() -> dict:
    """The environment of every command inside: nothing of this machine's Python (PYTHONPATH, a venv) leaks in."""
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "HOME": "/root", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
