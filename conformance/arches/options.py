"""The options of `conformance arch`, every one checked before anything is built or booted: a bad one is a BadInput,
one line, exit status 2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..compat.options import MIRROR
from ..compat.options import default_cache as userland_cache
from ..kernels import options as kernel_options
from ..kernels.guest import unsafe_path
from .machines import MACHINES

BadInput = kernel_options.BadInput
# The boot of an emulated guest of another architecture, virtme-ng's initramfs and all: measured 1 to 3 minutes here.
BOOT_TIMEOUT = 600.0


@dataclass
class Options(kernel_options.Options):
    arch: str = "arm64"
    mirror: str = "http://deb.debian.org/debian"


def checked(args) -> Options:
    """The Options of the parsed command line ``args``, each checked; a BadSetting for the first that is not
    usable."""
    if args.arch not in MACHINES:
        raise BadInput(f"unknown architecture {args.arch!r}: {', '.join(MACHINES)} is what this command boots")
    if not MIRROR.match(args.mirror):
        raise BadInput(f"--mirror {args.mirror}: not an http://, https:// or file:// URL")
    cpus = settings.whole_number(args.cpus, "--cpus", 1, settings.workers_limit())
    boot_timeout = BOOT_TIMEOUT if args.boot_timeout is None else \
        settings.seconds(args.boot_timeout, "--boot-timeout", kernel_options.MAX_WAIT)
    options = Options(out=Path(args.out).absolute(), cache=Path(args.cache or userland_cache()).absolute(),
                      arch=args.arch, mirror=args.mirror, kvm="no", cpus=cpus,
                      memory=kernel_options.memory(args.memory), host=False,
                      workers=settings.workers(args.workers, "-n", cpus=cpus), boot_timeout=boot_timeout,
                      timeout=settings.seconds(args.timeout, "--timeout", kernel_options.MAX_WAIT),
                      pytest_args=tuple(args.pytest_args), reference_dirs=kernel_options.reference_dirs(args))
    for option, path in (("--out", str(options.out)), ("--cache", str(options.cache))):
        if unsafe_path(path):
            raise BadInput(f"{option} {path}: virtme-ng cannot pass a path with blanks, quotes, '=' or ',' to a "
                           "guest")
    # The directories last: a missing one is made.
    settings.writable_dir(args.out, "--out", create=True)
    settings.writable_dir(str(options.cache), "--cache", create=True)
    if args.report_dir is not None:
        options.report_dir = settings.writable_dir(args.report_dir, "--report-dir", create=True)
    return options

