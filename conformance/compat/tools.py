"""The host programs `conformance compat` needs, each found or named with the Debian package that provides it."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass

SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
# Package names are Debian's and Ubuntu's.
PROGRAMS = {"debootstrap": "debootstrap", "chroot": "coreutils", "mount": "mount", "umount": "mount"}
# The 64-bit machines whose kernels run a 32-bit x86 userland through their compat layer (CONFIG_IA32_EMULATION).
HOSTS = {"i386": ("x86_64",)}


class MissingTools(Exception):
    """One line naming what is missing and how to get it."""


@dataclass(frozen=True)
class Tools:
    debootstrap: str
    chroot: str
    mount: str
    umount: str


def find_tools(arch: str) -> Tools:
    if sys.platform != "linux":
        raise MissingTools("conformance compat runs a Linux userland in a chroot: it runs on a Linux host only")
    machine = platform.machine()
    if machine not in HOSTS[arch]:
        raise MissingTools(f"conformance compat {arch} needs a kernel of {' or '.join(HOSTS[arch])}; this one is "
                           f"{machine}")
    return chroot_tools("conformance compat")


def chroot_tools(command: str) -> Tools:
    """debootstrap, chroot, mount and umount, and root, which they need; ``command`` names who needs them."""
    if os.geteuid() != 0:
        raise MissingTools(f"{command} needs root: debootstrap, mount and chroot do")
    path = os.pathsep.join([os.environ.get("PATH", ""), SBIN])
    found = {name: shutil.which(name, path=path) for name in PROGRAMS}
    missing = [f"{name} (apt package {PROGRAMS[name]})" for name, where in found.items() if where is None]
    if missing:
        raise MissingTools("missing " + "; ".join(missing))
    return Tools(**found)
