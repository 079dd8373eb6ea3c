"""The host programs `conformance kernels` needs, each found or named with the Debian package that provides it."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

# virtme-ng boots with QEMU, builds its initramfs around a static busybox, and runs depmod on an unpacked
# kernel's modules. Package names are Debian's and Ubuntu's.
QEMU = {"x86_64": "qemu-system-x86_64", "aarch64": "qemu-system-aarch64"}
QEMU_PACKAGE = {"x86_64": "qemu-system-x86", "aarch64": "qemu-system-arm"}
UDEVD_PATHS = ("/lib/systemd/systemd-udevd", "/usr/lib/systemd/systemd-udevd", "/sbin/udevd")
BUSYBOX_PATHS = ("/usr/lib/initramfs-tools/bin/busybox", "/bin/busybox", "/usr/bin/busybox", "/sbin/busybox")


class MissingTools(Exception):
    """One line naming what is missing and how to install it."""


@dataclass(frozen=True)
class Tools:
    vng: str
    path: str  # PATH for vng: it starts virtme-run from its own directory by name


def find_tools() -> Tools:
    if sys.platform != "linux":
        raise MissingTools("conformance kernels boots Linux kernels with virtme-ng: it runs on a Linux host only")
    machine = platform.machine()
    if machine not in QEMU:
        raise MissingTools(f"conformance kernels knows no QEMU for {machine}")
    # vng is installed beside this interpreter (the `kernels` extra), or anywhere on PATH.
    here = Path(sys.executable).parent
    vng = shutil.which("vng", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    missing = []
    if vng is None:
        missing.append("vng (pip install 'conformance[kernels]', or ci/kernels which does it)")
    if shutil.which(QEMU[machine]) is None:
        missing.append(f"{QEMU[machine]} (apt package {QEMU_PACKAGE[machine]})")
    if not any(os.path.exists(p) for p in BUSYBOX_PATHS) and shutil.which("busybox") is None:
        missing.append("busybox (apt package busybox-static)")
    if shutil.which("depmod", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
        missing.append("depmod (apt package kmod)")
    if not any(os.path.exists(p) for p in UDEVD_PATHS):
        # The guest boots on this machine's root filesystem, and virtme-ng's init finds the virtio-serial ports that
        # carry the guest command's input, output and exit status by the names udevd gives them: without it the
        # command's output goes nowhere and vng ends with 255.
        missing.append("systemd-udevd (apt package udev)")
    if missing:
        raise MissingTools("missing " + "; ".join(missing) + ". ci/install-kernel-tools installs the apt packages")
    path = os.pathsep.join([str(Path(vng).parent), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return Tools(vng=vng, path=path)


def kvm_usable() -> bool:
    """/dev/kvm can be opened for use. Whether a guest then boots is another matter (nested KVM may hang)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True
