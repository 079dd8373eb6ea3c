"""The facts a report needs about the machine it ran on, and a stable id built from them."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys

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
    """(mount point, filesystem type) pairs for the whole system."""
    mountinfo = constants().MOUNTINFO
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
    # BSD and illumos mount(8): "/dev/ada0p2 on / (ufs, local)" or "/ on rpool/ROOT read/write/... on ..."
    try:
        out = subprocess.run(["mount"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    mounts = []
    for line in out.splitlines():
        bsd = re.match(r"^\S+ on (.+) \(([^,)]+)", line)
        if bsd:
            mounts.append((bsd.group(1), bsd.group(2)))
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


def facts(workdir: str) -> dict:
    """The platform section of a report (capabilities are added by the caller)."""
    name = os_name()
    fstype = filesystem_type(workdir)
    return {
        "id": platform_id(name, fstype),
        "os": name,
        "release": release(name),
        "kernel": kernel(),
        "arch": platform.machine(),
        "libc": libc(),
        "python": {"implementation": platform.python_implementation(), "version": platform.python_version()},
        "filesystem": {"path": workdir, "type": fstype},
        "privileged": privileged(),
        "uid": os.geteuid(),
    }
