"""The host programs `conformance arch` needs, each found or named with the Debian package that provides it: those
that build a userland (compat.tools), virtme-ng, the architecture's QEMU, and QEMU's user-mode emulation registered
with binfmt_misc (debootstrap's second stage, venv and pip run the userland's own programs)."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..compat import tools as compat_tools
from .machines import Machine

MissingTools = compat_tools.MissingTools
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class Tools:
    chroot: compat_tools.Tools
    vng: str
    path: str  # PATH for vng: it starts virtme-run from its own directory by name


def find_tools(machine: Machine, binfmt_dir: Path = BINFMT_DIR) -> Tools:
    if sys.platform != "linux":
        raise MissingTools("conformance arch boots Linux kernels with virtme-ng: it runs on a Linux host only")
    chroot = compat_tools.chroot_tools("conformance arch")
    missing = []
    vng = shutil.which("vng", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if vng is None:
        missing.append("vng (pip install 'conformance[kernels]', or ci/arch which does it)")
    if shutil.which(machine.qemu_system) is None:
        missing.append(f"{machine.qemu_system} (apt package {machine.qemu_package})")
    if missing:
        raise MissingTools("missing " + "; ".join(missing) + ". ci/install-arch-tools installs the apt packages")
    if platform.machine() != machine.uname:
        problem = binfmt_problem(machine, binfmt_dir)
        if problem:
            raise MissingTools(problem)
    path = os.pathsep.join([str(Path(vng).parent), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return Tools(chroot=chroot, vng=vng, path=path)


def binfmt_problem(machine: Machine, binfmt_dir: Path = BINFMT_DIR) -> str:
    """Why this machine cannot run the architecture's programs in a chroot, or "": the binfmt_misc entry must exist,
    be enabled, and have the F flag (the interpreter opened when it was registered, so that it works inside a chroot
    that has no copy of it)."""
    install = "ci/install-arch-tools, or apt-get install qemu-user-static binfmt-support"
    if not (binfmt_dir / "status").exists():
        return (f"binfmt_misc is not mounted at {binfmt_dir}, so {machine.name} programs cannot run here "
                f"(mount -t binfmt_misc binfmt_misc {binfmt_dir}; {install})")
    try:
        entry = (binfmt_dir / machine.binfmt).read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return f"no binfmt_misc entry {machine.binfmt}, so {machine.name} programs cannot run here ({install})"
    flags = next((line.split(":", 1)[1].strip() for line in entry if line.startswith("flags:")), "")
    if "enabled" not in entry:
        return f"the binfmt_misc entry {machine.binfmt} is disabled (update-binfmts --enable {machine.binfmt})"
    if "F" not in flags:
        return (f"the binfmt_misc entry {machine.binfmt} lacks the F flag, so its interpreter cannot be found inside a "
                f"chroot (qemu-user-static registers it with F)")
    return ""
