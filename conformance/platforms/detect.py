"""The facts a report needs about the machine it ran on, and a stable id built from them."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys

from ..model import Platform
from . import constants, os_name


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


def privileged() -> bool:
    return os.geteuid() == 0


def _mount_table() -> list[tuple[str, str]]:
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
    """The type of the filesystem holding path (longest mount point that is a prefix of it)."""
    real = os.path.realpath(path)
    best, best_type = "", "unknown"
    for point, fstype in _mount_table():
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fstype
    return best_type


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower() or "unknown"


def platform_id(name: str | None = None, fstype: str | None = None) -> str:
    """OS, release and arch, then Python, privilege and the filesystem under test: runs that differ in any of
    those report differently (tmpfs and NFS lock differently from ext4)."""
    name = name or os_name()
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    who = "root" if privileged() else "user"
    parts = (name, release(name), platform.machine(), py, who) + ((fstype,) if fstype else ())
    return "-".join(_slug(part) for part in parts)


def facts(workdir: str) -> Platform:
    """The platform of a report (its capabilities are added by the caller)."""
    name = os_name()
    fstype = filesystem_type(workdir)
    c_library = libc()
    return Platform(
        id=platform_id(name, fstype), os=name, release=release(name), kernel=kernel(), arch=platform.machine(),
        libc_name=c_library["name"], libc_version=c_library["version"],
        python_implementation=platform.python_implementation(), python_version=platform.python_version(),
        filesystem_path=workdir, filesystem_type=fstype, privileged=privileged(), uid=os.geteuid())
