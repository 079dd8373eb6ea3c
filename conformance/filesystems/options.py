"""The options of `conformance filesystems`, every one checked before anything is mounted: a bad one is a BadInput,
one line, exit status 2. Mounting needs root, and the loop-backed filesystems a kernel with loop devices."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..kernels import guest
from ..kernels.options import default_cache
from ..kernels.sources import KernelSourceError, check, needs_cache
from .plans import DEFAULT, FILESYSTEMS, IN_GUEST, LOOP_BACKED

MAX_WAIT = 86400.0  # a suite run longer than a day is a typo
LOOP_CONTROL = "/dev/loop-control"
# Set by the command in the guest that --kernel boots: there, the NFS mounts are the guest's own.
IN_GUEST_VARIABLE = "CONFORMANCE_FILESYSTEMS_IN_GUEST"
GUEST_BASELINE = "tmpfs"


class BadInput(settings.BadSetting):
    """An option that cannot be used, or a machine where nothing can be mounted; one line."""


@dataclass
class Options:
    filesystems: tuple
    out: Path
    workers: str = "2"
    user: tuple | None = None   # (uid, gid) of the unprivileged run, if one is asked for
    timeout: float = 900.0
    pytest_args: tuple = ()
    kernel: str | None = None   # the kernel of the guest for the IN_GUEST filesystems (kernels/sources.py forms)
    cache: Path | None = None   # where a Debian kernel is unpacked
    kvm: str = "auto"
    in_guest: bool = False      # this is that guest: the IN_GUEST filesystems are mounted here

    def here(self) -> tuple:
        """The filesystems mounted by this process."""
        return tuple(name for name in self.filesystems if self.in_guest or name not in IN_GUEST)

    def guest(self) -> tuple:
        """The filesystems mounted in the guest that this process boots."""
        return () if self.in_guest else tuple(name for name in self.filesystems if name in IN_GUEST)

    def guest_runs(self) -> tuple:
        """What the guest runs: a tmpfs first, the baseline of its kernel that its filesystems are compared with."""
        return (GUEST_BASELINE, *self.guest()) if self.guest() else ()


def filesystems(text: str | None) -> tuple:
    """--fs tmpfs,ext4: each a filesystem the command knows, in the order given, once; default plans.DEFAULT."""
    if text is None:
        return DEFAULT
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FILESYSTEMS]
    if unknown or not names:
        raise BadInput(f"--fs {text}: not a comma-separated list of {', '.join(FILESYSTEMS)}")
    return tuple(dict.fromkeys(names))


def user(text: str | None) -> tuple | None:
    """--user NAME or UID: a user of this machine, or a bare number no account needs to have (its gid the same)."""
    if text is None:
        return None
    try:
        entry = pwd.getpwnam(text)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        pass
    uid = settings.whole_number(text, "--user", 1, 2**31 - 2) if text.strip().isdigit() else None
    if uid is None:
        raise BadInput(f"--user {text}: no such user here, and not a uid")
    return uid, uid


def machine(names: tuple, euid: int | None = None, loop_control: str = LOOP_CONTROL) -> None:
    """This machine can mount: root, and loop devices when a loop-backed filesystem is asked for."""
    euid = os.geteuid() if euid is None else euid
    if names and euid != 0:
        raise BadInput(f"mounting a filesystem needs root (this is uid {euid})")
    loop = [name for name in names if name in LOOP_BACKED]
    if loop and not os.path.exists(loop_control):
        raise BadInput(f"{', '.join(loop)} need loop devices, and this kernel has none ({loop_control} is missing); "
                       "--fs tmpfs,bindfs runs the others")


def kernel(spec: str | None, names: tuple, in_guest: bool) -> str | None:
    """--kernel KERNEL: the guest's kernel, needed exactly when a filesystem of IN_GUEST is asked for."""
    wanted = [name for name in names if name in IN_GUEST]
    if in_guest:
        return None
    if wanted and spec is None:
        raise BadInput(f"{', '.join(wanted)}: mounted in a virtme-ng guest, whose kernel serves the export over "
                       "loopback: give --kernel KERNEL (for example --kernel 6.12; see conformance kernels)")
    if spec is not None and not wanted:
        raise BadInput(f"--kernel {spec}: only {', '.join(IN_GUEST)} run in a guest, and --fs names none of them")
    if spec is not None:
        try:
            check(spec)
        except KernelSourceError as e:
            raise BadInput(str(e)) from None
    return spec


def checked(args, environ=os.environ) -> Options:
    names = filesystems(args.fs)
    in_guest = environ.get(IN_GUEST_VARIABLE) == "1"
    options = Options(filesystems=names, out=Path(args.out).absolute(), workers=settings.workers(args.workers, "-n"),
                      user=user(args.user), timeout=settings.seconds(args.timeout, "--timeout", MAX_WAIT),
                      pytest_args=tuple(args.pytest_args), kernel=kernel(args.kernel, names, in_guest),
                      cache=Path(args.cache or default_cache()).absolute(), kvm=args.kvm, in_guest=in_guest)
    settings.temp_dir()
    machine(options.here())  # the guest mounts its own as its root
    if options.kernel is not None and guest.unsafe_path(str(options.out)):
        raise BadInput(f"--out {options.out}: virtme-ng cannot pass a path with blanks, quotes, '=' or ',' to a guest")
    settings.writable_dir(args.out, "--out", create=True)  # last: a missing one is made
    if options.kernel is not None and needs_cache(options.kernel):
        settings.writable_dir(str(options.cache), "--cache", create=True)
    return options
