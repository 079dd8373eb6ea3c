"""The options of `conformance compat`, every one checked before anything is built or mounted: a bad one is a
BadInput, one line, exit status 2."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..kernels.options import reference_dirs

USERLANDS = ("i386",)  # what `conformance compat` builds: one Debian architecture each
MIRROR = re.compile(r"(https?|file)://[^\s]+\Z")
MAX_WAIT = 86400.0  # a run longer than a day is a typo, not a slow machine


class BadInput(settings.BadSetting):
    """An option that cannot be used, or a missing tool; one line."""


@dataclass
class Options:
    arch: str
    out: Path
    cache: Path
    mirror: str = "http://deb.debian.org/debian"
    report_dir: Path | None = None  # where the reports go, if not into out
    workers: str = "auto"
    user: bool = True     # also unprivileged inside
    native: bool = True   # the same selection on this machine's own userland, for the diff
    timeout: float = 1800.0
    pytest_args: tuple = ()
    reference_dirs: tuple = ()


def default_cache() -> Path:
    """Beside the kernels' cache: $XDG_CACHE_HOME/conformance/compat, else ~/.cache/conformance/compat."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "conformance" / "compat"


def checked(args) -> Options:
    """The Options of the parsed command line ``args``, each checked; a BadSetting for the first that is not
    usable."""
    if args.arch not in USERLANDS:
        raise BadInput(f"unknown userland {args.arch!r}: {', '.join(USERLANDS)} is what this command builds")
    if not MIRROR.match(args.mirror):
        raise BadInput(f"--mirror {args.mirror}: not an http://, https:// or file:// URL")
    settings.temp_dir()
    options = Options(arch=args.arch, out=Path(args.out).absolute(),
                      cache=Path(args.cache or default_cache()).absolute(), mirror=args.mirror,
                      workers=settings.workers(args.workers, "-n"), user=not args.no_user, native=not args.no_native,
                      timeout=settings.seconds(args.timeout, "--timeout", MAX_WAIT),
                      pytest_args=tuple(args.pytest_args))
    options.reference_dirs = reference_dirs(args)
    # The directories last: a missing one is made.
    settings.writable_dir(args.out, "--out", create=True)
    settings.writable_dir(str(options.cache), "--cache", create=True)
    if args.report_dir is not None:
        options.report_dir = settings.writable_dir(args.report_dir, "--report-dir", create=True)
    return options
