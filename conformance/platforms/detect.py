"""The facts a report needs about the machine it ran on, and a stable id built from them."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import struct
import subprocess
import sys

from ..model import Platform
from . import constants, machine_entry, os_name


def release(name: str | None = None) -> str:
    """The OS release people name it by: the kernel release, except macOS's product version."""
    name = name or os_name()
    if name == "darwin":
        return platform.mac_ver()[0] or platform.release()
    return platform.release()


def kernel() -> str:
    uname = os.uname()
    return f"{uname.sysname} {uname.release} {uname.version}".strip()


def libc() -> dict:
    """C library name and version; the BSDs and macOS ship theirs with the OS release."""
    name, version = platform.libc_ver()
    if name:
        return {"name": name, "version": version}
    system = os_name()
    if system == "darwin":
        return {"name": "libSystem", "version": release(system)}
    if system in ("freebsd", "illumos"):
        return {"name": f"{system} libc", "version": platform.release()}
    return {"name": "unknown", "version": ""}


def kernel_machine() -> str | None:
    """The machine the kernel was built for, whatever the personality says; None where the platform does not show
    it."""
    path = constants().KERNEL_MACHINE
    if path is None:
        return None
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip() or None
    except OSError:
        return None


def arch() -> str:
    """The machine the userland runs as; "i686 on x86_64" for a 32-bit userland on a 64-bit kernel (through the
    kernel's compat layer, which is then what the suite tests)."""
    machine, kernel = platform.machine(), kernel_machine()
    if platform.architecture()[0] == "32bit":  # the interpreter's ELF class: a 32-bit program, whatever uname says
        userland = constants().COMPAT_MACHINES.get(machine, machine)
    else:  # a personality changes what uname says, not what a 64-bit program runs as
        userland = kernel or machine
    return userland if kernel in (None, userland) else f"{userland} on {kernel}"


def privileged() -> bool:
    return os.geteuid() == 0


def mount_table() -> list[tuple[str, str]]:
    """(mount point, filesystem type) pairs for the whole system; empty if nothing could be read."""
    c = constants()
    mountinfo = c.MOUNTINFO
    if mountinfo and os.path.exists(mountinfo):
        mounts = []
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                # "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) >= 5 and right:
                    point = fields[4].encode().decode("unicode_escape")
                    mounts.append((point, right.split()[0]))
        return mounts
    if c.MNTTAB and os.path.exists(c.MNTTAB):
        # illumos mnttab(5): "special<TAB>mount point<TAB>fstype<TAB>options<TAB>time", one line per mount.
        mounts = []
        try:
            with open(c.MNTTAB, encoding="utf-8", errors="replace") as f:
                for line in f:
                    fields = line.rstrip("\n").split("\t")
                    if len(fields) >= 3:
                        mounts.append((fields[1], fields[2]))
        except OSError:
            mounts = []
        if mounts:
            return mounts
    return _parse_mount_output(_run_mount())


def _run_mount() -> str:
    """mount(8)'s listing. It lives in /sbin on the BSDs and macOS, which an unprivileged PATH may lack."""
    program = shutil.which("mount") or shutil.which("mount", path="/sbin:/usr/sbin:/etc")
    if program is None:
        return ""
    try:
        return subprocess.run([program], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


# FreeBSD and macOS mount(8): "/dev/ada0p2 on / (ufs, local)", "zroot/ROOT/default on / (zfs, local, noatime)",
# "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)".
_MOUNT_BSD = re.compile(r"^\S.* on (/.*?) \(([^,)]+)")
# util-linux mount(8) and illumos `mount -v`: "sysfs on /sys type sysfs (rw,nosuid)",
# "rpool/ROOT/omnios on / type zfs read/write/setuid/...".
_MOUNT_TYPED = re.compile(r"^\S.* on (/.*?) type (\S+)")


def _parse_mount_output(text: str) -> list[tuple[str, str]]:
    mounts = []
    for line in text.splitlines():
        found = _MOUNT_TYPED.match(line) or _MOUNT_BSD.match(line)
        if found:
            mounts.append((found.group(1), found.group(2).strip()))
    return mounts


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding path: the longest mount point that is a prefix of it, else (a chroot,
    whose own root the mount table leaves out) the name of statfs's f_type."""
    real = os.path.realpath(path)
    best, best_type = "", None
    for point, fstype in mount_table():
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fstype
    return best_type or statfs_type(real) or "unknown"


def statfs_type(path: str) -> str | None:
    """The name of statfs(2)'s f_type for path (0x... for a number the platform does not name), None where the
    platform has no statfs data or the call fails."""
    c = constants()
    form = machine_entry(c.STATFS_TYPE_CODE)
    if form is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    # statfs64 where the C library has both (32-bit glibc): the plain one fails EOVERFLOW on a filesystem whose
    # block counts overflow 32 bits. The buffer outsizes struct statfs64 on every architecture (120 bytes at most).
    call = getattr(libc, "statfs64", None) or libc.statfs
    buffer = ctypes.create_string_buffer(512)
    if call(os.fsencode(path), buffer) != 0:
        return None
    magic = struct.unpack_from(form, buffer.raw)[0] & 0xFFFFFFFF
    return c.STATFS_MAGIC.get(magic, f"{magic:#x}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower() or "unknown"


def platform_id(name: str | None = None, fstype: str | None = None) -> str:
    """OS, release and arch, then Python, privilege and the filesystem under test: runs that differ in any of
    those report differently (tmpfs and NFS lock differently from ext4)."""
    name = name or os_name()
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    who = "root" if privileged() else "user"
    parts = (name, release(name), arch(), py, who) + ((fstype,) if fstype else ())
    return "-".join(_slug(part) for part in parts)


def facts(workdir: str) -> Platform:
    """The platform of a report (its capabilities are added by the caller)."""
    name = os_name()
    fstype = filesystem_type(workdir)
    c_library = libc()
    return Platform(
        id=platform_id(name, fstype), os=name, release=release(name), kernel=kernel(), arch=arch(),
        libc_name=c_library["name"], libc_version=c_library["version"],
        python_implementation=platform.python_implementation(), python_version=platform.python_version(),
        filesystem_path=workdir, filesystem_type=fstype, privileged=privileged(), uid=os.geteuid())
