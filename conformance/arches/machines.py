"""The architectures `conformance arch` boots, as Debian and QEMU name them.

Each is a Debian port with a kernel of its own (the metapackage that follows the release's newest kernel) and a QEMU
system emulator; the userland is built, and the suite installed into it, on this machine through QEMU's user-mode
emulation, which qemu-user-static registers with binfmt_misc under the name given here (Debian's
qemu-user-static/binfmt-support naming: /proc/sys/fs/binfmt_misc/qemu-<machine>).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compat.build import Target

# What the guest needs besides the suite: virtme-ng's init is a shell script run by busybox from the guest's root,
# it names the ports that carry the command's output with udevd, and loads modules with kmod.
GUEST_PACKAGES = ("busybox-static", "udev", "kmod")
# What else virtme-ng's init runs that a minbase userland lacks, taken from busybox: `ip` brings the loopback
# interface up (without it the cases over 127.0.0.1 find no network), `poweroff` ends the guest (without it init exits
# and the kernel panics).
BUSYBOX_APPLETS = ("ip", "poweroff")


@dataclass(frozen=True)
class Machine:
    name: str            # the command's argument, Debian's architecture, virtme-ng's --arch
    uname: str           # what `uname -m` says on it
    qemu_system: str     # QEMU's full-system emulator of it
    qemu_package: str    # the Debian package that has it
    binfmt: str          # the binfmt_misc entry of qemu-user-static for it
    kernel_package: str  # Debian's metapackage of its newest kernel
    byte_order: str      # little | big

    @property
    def target(self) -> Target:
        return Target(self.name, extra=(*GUEST_PACKAGES, self.kernel_package))


MACHINES = {
    machine.name: machine for machine in (
        Machine("arm64", "aarch64", "qemu-system-aarch64", "qemu-system-arm", "qemu-aarch64", "linux-image-arm64",
                "little"),
        # Big-endian: the suite's struct packing meets the other byte order here first.
        Machine("s390x", "s390x", "qemu-system-s390x", "qemu-system-misc", "qemu-s390x", "linux-image-s390x", "big"),
    )
}
