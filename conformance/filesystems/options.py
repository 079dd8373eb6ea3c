"""The options of `conformance filesystems`, every one checked before anything is mounted: a bad one is a BadInput,
one line, exit status 2. Mounting needs root, and the loop-backed filesystems a kernel with loop devices."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from .plans import DEFAULT, FILESYSTEMS, LOOP_BACKED

MAX_WAIT = 86400.0  # a suite run longer than a day is a typo
LOOP_CONTROL = "/dev/loop-control"


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
    if euid != 0:
        raise BadInput(f"mounting a filesystem needs root (this is uid {euid})")
    loop = [name for name in names if name in LOOP_BACKED]
    if loop and not os.path.exists(loop_control):
        raise BadInput(f"{', '.join(loop)} need loop devices, and this kernel has none ({loop_control} is missing); "
                       "--fs tmpfs,bindfs runs the others")


def checked(args) -> Options:
    names = filesystems(args.fs)
    options = Options(filesystems=names, out=Path(args.out).absolute(), workers=settings.workers(args.workers, "-n"),
                      user=user(args.user), timeout=settings.seconds(args.timeout, "--timeout", MAX_WAIT),
                      pytest_args=tuple(args.pytest_args))
    settings.temp_dir()
    machine(names)
    settings.writable_dir(args.out, "--out", create=True)  # last: a missing one is made
    return options
