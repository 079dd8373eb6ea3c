"""The virtme-ng command line for one kernel, and the command the guest runs.

The guest sees the host's root filesystem read-only (virtme-ng lays writable overlays on /etc, /tmp and the
like), so it runs this very interpreter and checkout; the report directory is shared writable with --rwdir.
The guest's first line of output is the marker, so the host can tell "did not boot" from "the suite failed". The
guest also writes the marker to a file of the shared directory, closed at once (which flushes it to the host), and
keeps its whole output there: the output travels to the host over virtio-serial ports that udevd names in the
guest, and on a loaded machine a guest has booted and run with none of it reaching the host. vng runs with
--verbose, so that the kernel's own console (its boot, a panic) reaches the log as well.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .sources import Kernel
from .tools import Tools

MARKER = "conformance-kernels: booted"
BOOTED = "booted"      # the file of the shared directory that holds the marker once the guest runs its command
GUEST_LOG = "guest.log"  # the guest's output, as it wrote it
STATUS = "status"        # the suite's exit status, which tee would otherwise hide
# vng joins its options into one command line, so a path with blanks, quotes, '=' (its guest=host form) or ','
# would be split or misread.
UNSAFE_PATH = re.compile(r"[\s'\"=,\\$`]")
# How much slower a fresh interpreter starts without KVM (measured: python -c pass 1.9 s under emulation,
# 0.02 s on the host); harness deadlines stretch by this much there, and a little with KVM.
SCALE_EMULATED = 6.0
SCALE_KVM = 2.0


@dataclass(frozen=True)
class GuestRoot:
    """A root filesystem the guest boots on instead of this machine's: another architecture's userland."""
    arch: str    # virtme-ng's --arch
    path: str    # the tree on this machine
    python: str  # the interpreter inside that has the suite installed
    shared: str  # where the report directory appears inside: a directory the tree has


def unsafe_path(path: str) -> bool:
    return bool(UNSAFE_PATH.search(path))


def guest_command(python: str, report_dir: str, test_dir: str, workers: str, scale: float,
                  pytest_args: list[str]) -> str:
    run = [python, "-m", "conformance", "run", "--report-dir", report_dir, "--dir", test_dir, "-n", workers]
    if pytest_args:
        run += ["--", *pytest_args]
    return shell_command(run, report_dir, scale)


def shell_command(argv: list[str], shared_dir: str, scale: float, env: tuple = ()) -> str:
    """The guest's shell command: the marker (on the output and in a file of shared_dir), then argv with the
    deadline scale and env (NAME=value each), its output kept in shared_dir too, its exit status the guest's."""
    env = ["PYTHONDONTWRITEBYTECODE=1", f"CONFORMANCE_DEADLINE_SCALE={scale:g}", *env]
    booted, log, status = (shlex.quote(f"{shared_dir}/{name}") for name in (BOOTED, GUEST_LOG, STATUS))
    # The marker is printed from its words, so that no echo of this command line could pass for it.
    words = shlex.join([*MARKER.split(": ", 1)])
    return (f'marker=$(printf "%s: %s" {words})" $(uname -r)"; echo "$marker" > {booted}; '
            f'{{ echo "$marker"; env {shlex.join([*env, *argv])}; echo $? > {status}; }} 2>&1 | tee {log}; '
            f'exit "$(cat {status} 2>/dev/null || echo 255)"')


def vng_command(tools: Tools, kernel: Kernel, *, kvm: bool, cpus: int, memory: str, user: str | None,
                shared_dir: str, command: str, root: GuestRoot | None = None) -> list[str]:
    """``shared_dir`` is this machine's; the guest sees it at the same path, or at ``root.shared`` on a root of its
    own."""
    inside = root.shared if root else shared_dir
    argv = [tools.vng, "--verbose", "--run", kernel.image, "--cpus", str(cpus), "--memory", memory,
            "--rwdir", f"{inside}={shared_dir}", "--exec", command]
    if not kvm:
        argv.insert(1, "--disable-kvm")
    if root:
        argv += ["--arch", root.arch, "--root", root.path]
    if user:
        argv += ["--user", user]
    return argv
