"""The kernel's table of file locks, where the platform has one: who waits for a lock on a file.

A case that must know a lock waiter is asleep in the kernel asks here instead of waiting a fixed time. Only Linux
lists waiters (`PROC_LOCKS`, /proc/locks: fs/locks.c lock_get_status, proc_locks(5)), and not every one on a network
or cluster filesystem; elsewhere the answer is None and the case falls back to a window of silence. The same table
lists the locks held on a file, whoever took them.
"""

from __future__ import annotations

import os

from . import constants


def _identities(path) -> set[str]:
    """How the table may name a file: "<major>:<minor>:<inode>", the device numbers in hex. fs/locks.c prints the
    superblock's device (inode->i_sb->s_dev), which is stat's st_dev on most filesystems; btrfs gives each subvolume
    an anonymous device of its own instead (fs/btrfs/inode.c btrfs_getattr: stat->dev = root->anon_dev), and there the
    superblock's is the one mountinfo names for the mount. (Two subvolumes of one btrfs may hold the same inode
    number: the table cannot tell their files apart, and neither can this.)"""
    st = os.stat(path)
    devices = {(os.major(st.st_dev), os.minor(st.st_dev))}
    mount = _mount_of(os.path.realpath(path))
    if mount is not None:
        devices.add(mount[0])
    return {f"{major:02x}:{minor:02x}:{st.st_ino}" for major, minor in devices}


def _mount_of(path: str) -> tuple[tuple[int, int], str] | None:
    """(major, minor) and the filesystem type that mountinfo gives the mount holding path (the longest mount point
    above it); None if no table says."""
    mountinfo = constants().MOUNTINFO
    best, found = "", None
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                # "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
                # (proc_pid_mountinfo(5))
                fields = line.split()
                if len(fields) < 5 or ":" not in fields[2]:
                    continue
                point = fields[4].encode().decode("unicode_escape")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    major, _, minor = fields[2].partition(":")
                    after = fields[fields.index("-") + 1:] if "-" in fields[5:] else []
                    best, found = point, ((int(major), int(minor)), after[0] if after else "")
    except (OSError, TypeError, ValueError):
        return None
    return found


def _lists_every_waiter(path) -> bool:
    """Whether a waiter for a lock on this file is always in this kernel's table. Not on a filesystem whose locks a
    server or a cluster's lock manager arbitrates (the platform's REMOTE_LOCK_FILESYSTEMS): a request that meets a
    lock there sleeps in that protocol, not in the kernel's lists (seen over NFS: a flock waiter blocked by a fcntl
    lock, which only the server sees, is not listed; reports/filesystems/evidence). There a case must not wait for
    the table to list it, and falls back to a window of silence, as where there is no table."""
    remote = constants().REMOTE_LOCK_FILESYSTEMS
    if not remote:
        return True
    mount = _mount_of(os.path.realpath(path))
    return mount is None or mount[1] not in remote


def held(path) -> list[tuple[str, str, str]] | None:
    """The locks the kernel lists as held on this file, as (class, type, pid) strings; None where it cannot tell.

    A held lock is "1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> <start> <end>": class FLOCK, POSIX or
    OFDLCK (also LEASE, DELEG), type READ or WRITE, and the pid the kernel recorded for it, shown even when that
    process has exited (fstests generic/504); waiters ("->" lines) are not held.
    """
    rows = _rows(path)
    return None if rows is None else [(fields[1], fields[3], fields[4]) for fields in rows if fields[1] != "->"]


def waiters(path, pid: int) -> int | None:
    """How many waiters the kernel lists on this file for pid; None where it cannot tell.

    A waiter is a "->" line: "1: -> POSIX  ADVISORY  WRITE <pid> <major>:<minor>:<inode> <start> <end>". OFD waiters
    belong to no process and are listed with pid -1, so for them every waiter on the file counts.
    """
    listed = _waiter_lines(path)
    return None if listed is None else sum(1 for fields in listed if fields[5] in (str(pid), "-1"))


def blocked(path) -> list[tuple[str, str, str, str, str]] | None:
    """Every waiter the kernel lists on this file, as (class, type, pid, start, end) strings, end inclusive or "EOF"
    (fs/locks.c lock_get_status); None where it cannot tell."""
    listed = _waiter_lines(path)
    return None if listed is None else [(f[2], f[4], f[5], f[7], f[8]) for f in listed if len(f) > 8]


def all_waiters(path) -> int | None:
    """How many waiters the kernel lists on this file, whoever they are ("->" lines, as `waiters` reads them); None
    where it cannot tell. A case whose waiters are all its own knows from it that every one still pending sleeps."""
    listed = _waiter_lines(path)
    return None if listed is None else len(listed)


def _waiter_lines(path) -> list | None:
    """The fields of every "->" line the lock table has for this file; None where there is no table to read, or the
    table may not list every waiter on it."""
    rows = _rows(path)
    if rows is None or not _lists_every_waiter(path):
        return None
    return [fields for fields in rows if fields[1] == "->"]


def _rows(path) -> list | None:
    """The fields of every line the lock table has for this file, held locks and waiters ("->" lines, one field
    longer); None where there is no table to read."""
    table = constants().PROC_LOCKS
    if table is None:
        return None
    idents = _identities(path)
    try:
        f = open(table)
    except OSError:
        return None
    with f:
        return [fields for fields in map(str.split, f)
                if (len(fields) > 6 and fields[1] == "->" and fields[6] in idents)
                or (len(fields) > 5 and fields[1] != "->" and fields[5] in idents)]
