"""The options of `conformance kernels`, every one checked before anything is fetched or booted: a bad one is a
BadInput, one line, exit status 2.

Pure checks come first (numbers, the user, the kernel arguments), then the directories, which are made if missing.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from . import guest
from .sources import KernelSourceError, check, needs_cache

# A wait longer than a day is a typo, not a slow kernel.
MAX_WAIT = 86400.0
# Guest memory, as QEMU's -m reads it (MiB without a suffix). Less than this cannot start the interpreter, pytest and
# its workers; more than this machine has would only swap.
MIN_MEMORY_MIB = 256
MEMORY = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[kmgt]?)", re.IGNORECASE)
_MIB_PER_UNIT = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}


class BadInput(settings.BadSetting):
    """An option or kernel argument that cannot be used; one line."""


@dataclass
class Options:
    out: Path
    cache: Path
    report_dir: Path | None = None  # where the reports go, if not into out
    kvm: str = "auto"           # auto | yes | no
    cpus: int = 2
    memory: str = "2G"
    user: str | None = None
    test_dir: str = "/dev/shm"
    host: bool = True
    workers: str = "auto"
    boot_timeout: float | None = None
    timeout: float = 1800.0
    pytest_args: tuple = ()
    reference_dirs: tuple = ()  # with these, each report is judged against its family's reference (exit status)


def reference_dirs(args) -> tuple:
    """--reference-dir, each a directory that can be read (its reports are read at the end)."""
    found = []
    for directory in getattr(args, "reference_dir", None) or ():
        if not os.path.isdir(directory):
            raise BadInput(f"--reference-dir {directory}: not a directory")
        found.append(Path(directory))
    return tuple(found)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "conformance" / "kernels"


def host_memory_mib() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    except (ValueError, OSError, AttributeError):
        return None


def memory(text: str) -> str:
    """Guest memory as QEMU's -m takes it: 2G, 1536M, 2048 (MiB); at least MIN_MEMORY_MIB, at most this machine's."""
    match = MEMORY.fullmatch(text.strip())
    mib = float(match["number"]) * _MIB_PER_UNIT[match["unit"].lower()] if match else 0
    most = host_memory_mib()
    if not mib >= MIN_MEMORY_MIB or (most is not None and mib > most):
        limit = f" and at most this machine's {most}M" if most is not None else ""
        raise BadInput(f"--memory {text}: not a size such as 2G or 1536M (MiB without a unit), at least "
                       f"{MIN_MEMORY_MIB}M{limit}")
    return text.strip()


def _user(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise BadInput(f"--user {name}: no such user here (the guests see this machine's users)") from None
    return name


def checked(args) -> Options:
    """The Options of the parsed command line ``args``, each checked; a BadSetting for the first that is not
    usable."""
    specs, host = args.kernels, not args.no_host
    if not specs and not host:
        raise BadInput("nothing to run: no kernel given and --no-host")
    cpus = settings.whole_number(args.cpus, "--cpus", 1, settings.workers_limit())
    workers = args.workers
    if specs:  # the guests have --cpus CPUs
        workers = settings.workers(workers, "-n", cpus=cpus)
    if host:
        workers = settings.workers(workers, "-n")
        settings.temp_dir()  # the host run's
    boot_timeout = None if args.boot_timeout is None else settings.seconds(args.boot_timeout, "--boot-timeout",
                                                                           MAX_WAIT)
    options = Options(out=Path(args.out).absolute(), cache=Path(args.cache or default_cache()).absolute(),
                      kvm=args.kvm, cpus=cpus, memory=memory(args.memory), user=_user(args.user),
                      test_dir=args.dir, host=host, workers=workers, boot_timeout=boot_timeout,
                      timeout=settings.seconds(args.timeout, "--timeout", MAX_WAIT),
                      pytest_args=tuple(args.pytest_args), reference_dirs=reference_dirs(args))
    try:
        for spec in specs:
            check(spec)
    except KernelSourceError as e:
        raise BadInput(str(e)) from None
    for option, path in (("--out", str(options.out)), ("--dir", args.dir)):  # --report-dir and --cache: the host's
        if guest.unsafe_path(path):
            raise BadInput(f"{option} {path}: virtme-ng cannot pass a path with blanks, quotes, '=' or ',' to a "
                           "guest")
    # The directories last: a missing one is made.
    settings.writable_dir(args.dir, "--dir")
    settings.writable_dir(args.out, "--out", create=True)
    if args.report_dir is not None:
        options.report_dir = settings.writable_dir(args.report_dir, "--report-dir", create=True)
    if any(needs_cache(spec) for spec in specs):
        settings.writable_dir(str(options.cache), "--cache", create=True)
    return options
