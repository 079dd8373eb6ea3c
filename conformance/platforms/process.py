"""What the OS says about processes, each OS's way: adopting orphans, this process's children, another's process."""

from __future__ import annotations

import glob
import os
import subprocess

from . import constants


def become_subreaper() -> bool:
    """Where the OS allows it, adopt orphaned descendants, so that they stay this process's children to find.

    Linux: prctl(PR_SET_CHILD_SUBREAPER); FreeBSD: procctl(PROC_REAP_ACQUIRE). Never raises: False where it failed
    or the OS has no such call.
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


def children_listed_cheaply() -> bool:
    """Whether child_pids() reads the kernel's own list of children, so that a child kept alive across cases costs
    the leak check nothing (elsewhere it runs ps(1) on every check while a child is running)."""
    pattern = constants().CHILDREN_FILE
    return bool(pattern and glob.glob(pattern.format(tid="*")))


def _read_children_files(pattern: str) -> set[int] | None:
    """The pids in the children file of each of this process's threads (pattern's {tid}), None where no thread has
    one. Read raw, threads listed by hand: the leak check asks twice a case, and glob and text files cost more than
    the reading itself."""
    directory, tid_field, rest = pattern.partition("{tid}")
    try:
        paths = [f"{directory}{tid}{rest}" for tid in os.listdir(directory)] if tid_field else [pattern]
    except OSError:
        return None
    found: set[int] | None = None
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # a thread that has just ended, or no such file at all
        found = found if found is not None else set()
        try:
            data = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
            found.update(int(p) for p in data.split())
        except OSError:
            pass
        finally:
            os.close(fd)
    return found


def child_pids(ps_timeout: float) -> set[int]:
    """Every child of this process, running or zombie, by the cheapest means the OS offers; a zombie found along
    the way is reaped, and still returned. ps(1), where it must be asked, gets ps_timeout seconds."""
    pattern = constants().CHILDREN_FILE
    listed = _read_children_files(pattern) if pattern else None
    if listed is not None:  # None where the kernel lacks CONFIG_PROC_CHILDREN: then ask as the other systems do
        return listed
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
        out, _ = ps.communicate(timeout=ps_timeout)
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


def process_of_another_uid() -> int | None:
    """A process whose effective uid is not this process's, as the OS's process directory shows it (an entry's
    owner), or None: none is visible, or the OS has no such directory."""
    root = constants().PROC_ROOT
    if not root:
        return None
    try:
        names = os.listdir(root)
    except OSError:
        return None
    for name in sorted(names, key=lambda n: (len(n), n)):
        if name.isdigit():
            try:
                if os.stat(f"{root}/{name}").st_uid != os.geteuid():
                    return int(name)
            except FileNotFoundError:
                continue
    return None
