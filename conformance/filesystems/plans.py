"""What mounting each filesystem takes here: the commands in order, the command that undoes each, and the programs
they need with the Debian package of each. Pure: nothing is run here (mounting.py carries a plan out).

A command may name the value an earlier one printed ({loop}: the loop device `losetup --show` attached). Images are
sparse files in the run's temporary directory: they cost what is written into them, not their size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Each filesystem the command knows, in the order it runs them: the two baselines first.
FILESYSTEMS = ("tmpfs", "ext4", "xfs", "btrfs", "overlay", "bindfs", "bindfs-forwarding", "nfs3", "nfs4.2")
# Served by the kernel's nfsd and mounted over loopback: only inside a virtme-ng guest (--kernel), whose NFS server
# comes and goes with it; on this machine it would take over its nfsd, exports and /var/lib/nfs.
IN_GUEST = ("nfs3", "nfs4.2")
# What runs without --fs: bindfs-forwarding only when named, since its cases hang until --timeout (README,
# "Filesystems"); the NFS mounts only with --kernel.
DEFAULT = tuple(name for name in FILESYSTEMS if name != "bindfs-forwarding" and name not in IN_GUEST)
# The baseline each report is compared with, the first of these that ran.
BASELINES = ("ext4", "tmpfs")
# mkfs.xfs refuses less than 300 MB; mkfs.btrfs less than 110 MB. One size for all, sparse.
IMAGE_SIZE = "300M"
TMPFS_SIZE = "128m"
# The program each step needs -> the Debian package that provides it.
PACKAGES = {
    "truncate": "coreutils", "mkdir": "coreutils", "chmod": "coreutils", "touch": "coreutils",
    "losetup": "mount", "mount": "mount", "umount": "mount",
    "sh": "dash", "mkfs.ext4": "e2fsprogs", "mkfs.xfs": "xfsprogs", "mkfs.btrfs": "btrfs-progs", "bindfs": "bindfs",
    "modprobe": "kmod", "pkill": "procps", "rpcbind": "rpcbind", "rpc.statd": "nfs-common", "mount.nfs": "nfs-common",
    "exportfs": "nfs-kernel-server", "rpc.mountd": "nfs-kernel-server", "rpc.nfsd": "nfs-kernel-server",
}
# The types the kernel's drivers register in /proc/filesystems that each one needs (the NFS server's and client's
# once their modules are loaded: MODULES).
KERNEL_TYPES = {"tmpfs": ("tmpfs",), "ext4": ("ext4",), "xfs": ("xfs",), "btrfs": ("btrfs",), "overlay": ("overlay",),
                "bindfs": ("fuse",), "bindfs-forwarding": ("fuse",), "nfs3": ("nfsd", "nfs"),
                "nfs4.2": ("nfsd", "nfs4")}
# Modules loaded before a plan is judged possible (modprobe -a; a kernel with the driver built in has none to load):
# the NFS server, and the client of the protocol version, as Debian's kernels build them.
MODULES = {"nfs3": ("nfsd", "nfsv3"), "nfs4.2": ("nfsd", "nfsv4")}
# mkfs of each loop-backed filesystem, quiet and over whatever an earlier run left in the image.
MKFS = {"ext4": ("mkfs.ext4", "-q", "-F"), "xfs": ("mkfs.xfs", "-q", "-f"), "btrfs": ("mkfs.btrfs", "-q", "-f")}
LOOP_BACKED = frozenset({"ext4", "xfs", "btrfs", "overlay"})
PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")


@dataclass(frozen=True)
class Step:
    does: str                       # what it does, for messages: "attach the ext4 image to a loop device"
    argv: tuple                     # the command; {name} is a value an earlier step captured
    undo: tuple = ()                # the commands that undo it, tried in order until one succeeds
    captures: str | None = None     # the name its output's first line is kept under

    def command(self, values: dict) -> tuple:
        """The command, with the values captured by the steps before it."""
        return fill(self.argv, values)

    def undoing(self, values: dict) -> tuple:
        """The commands that undo it, with the values captured by it and the steps before it."""
        return tuple(fill(alternative, values) for alternative in self.undo)


@dataclass(frozen=True)
class Plan:
    name: str                       # as --fs names it
    target: str                     # the directory the cases make their files in
    steps: tuple = field(default=())
    helpers: tuple = ()             # programs a step's program runs in turn (mount's mount.nfs)

    def programs(self) -> list[str]:
        """Every program the plan runs, mounting and undoing, once each, in order."""
        seen = list(self.helpers)
        for step in self.steps:
            for argv in (step.argv, *step.undo):
                if argv[0] not in seen:
                    seen.append(argv[0])
        return seen


def fill(argv: tuple, values: dict) -> tuple:
    """argv with each {name} replaced by the value captured under that name; a name not captured is a KeyError."""
    return tuple(PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in argv)


def _unmount(point: str) -> tuple:
    # A lazy unmount only when the plain one is refused (a process still holds a file there): the mount point goes
    # at once, the filesystem when its last file is closed, so that the loop device can still be detached.
    return (("umount", point), ("umount", "--lazy", point))


# A FUSE mount whose server no longer answers (a lock request it never replies to) keeps its callers asleep in the
# kernel, beyond SIGKILL (fs/fuse/dev.c request_wait_answer waits out a request already sent), and a lazy unmount
# leaves the server and them as they are. Aborting the connection (Documentation/filesystems/fuse.rst, "Aborting a
# filesystem connection": /sys/fs/fuse/connections/<n>/abort, n the mount's minor device number; the fusectl
# filesystem there is mounted for it if it is not, and unmounted after) fails every request with ENOTCONN: the
# callers end, the server exits, and the mount point can go.
_ABORT_FUSE = """
n=$(awk -v m="$0" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo)
[ -n "$n" ] || exit 1
c=/sys/fs/fuse/connections
ours=
if [ ! -e "$c/$n/abort" ]; then mount -t fusectl fusectl "$c" && ours=1; fi
echo 1 > "$c/$n/abort"; aborted=$?
if [ -n "$ours" ]; then umount "$c"; fi
[ "$aborted" = 0 ] && umount --lazy "$0"
"""


def _unmount_fuse(point: str) -> tuple:
    return (("umount", point), ("sh", "-c", _ABORT_FUSE, point))


def _unmount_fuse_source(point: str) -> tuple:
    # A server whose threads still sleep in a lock on its source files (bindfs after an abort) outlives its mount and
    # keeps the source busy: it is killed (fuser(1) -m: every process using that filesystem, which only the server
    # uses), then the source unmounted.
    return (("umount", point), ("sh", "-c", 'fuser -s -k -m "$0"; sleep 1; umount "$0"', point),
            ("umount", "--lazy", point))


def _mkdir(*points: str) -> Step:
    return Step(f"make {', '.join(points)}", ("mkdir", "-p", *points))


def _tmpfs(point: str, undo: tuple | None = None) -> list[Step]:
    return [_mkdir(point),
            Step(f"mount a tmpfs on {point}", ("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "conformance",
                                                point), undo=undo or _unmount(point))]


def _loop(fstype: str, base: str, point: str) -> list[Step]:
    """An image of fstype in base, on a loop device of its own, mounted on point."""
    image, name = f"{base}/{fstype}.img", f"loop_{fstype}"
    return [
        Step(f"make the {fstype} image", ("truncate", "-s", IMAGE_SIZE, image)),
        Step(f"make {fstype} in the image", (*MKFS[fstype], image)),
        Step(f"attach the {fstype} image to a loop device", ("losetup", "--find", "--show", image),
             undo=(("losetup", "--detach", f"{{{name}}}"),), captures=name),
        _mkdir(point),
        Step(f"mount {fstype} on {point}", ("mount", "-t", fstype, f"{{{name}}}", point), undo=_unmount(point)),
    ]


def _open_to_all(point: str) -> Step:
    # The unprivileged run makes its files there too: sticky and writable by all, as /tmp is.
    return Step(f"let every user make files in {point}", ("chmod", "1777", point))


def _daemon(program: str, *args: str) -> Step:
    # Each NFS daemon detaches itself; the plan runs in a guest of its own, so no other instance is ended with it.
    return Step(f"start {program}", (program, *args), undo=(("pkill", "-x", program),))


# An export any client of this machine may mount read-write as root (no_root_squash: the root run's cases chown and
# lock as root), from a port above 1024 too (insecure), written through at once (sync). fsid=0 names it (a tmpfs has
# no device number nfsd could name it by) and makes it NFSv4's root, mounted as "/": the pseudo-filesystem nfsd would
# build from the guest's / up to it cannot be, since that / (this machine's, shared into the guest) is no filesystem
# nfsd can export (exports(5): fsid=root).
EXPORT_OPTIONS = "rw,sync,no_subtree_check,no_root_squash,insecure,fsid=0"
NFS_STATE = "/var/lib/nfs"  # exportfs's etab and rpc.statd's monitor list: a tmpfs in the guest, whose / is read-only
NFSD_FS = "/proc/fs/nfsd"   # the nfsd filesystem, through which rpc.nfsd starts the server's threads
NFSD_THREADS = "4"
# The server's grace period, in which it grants no new lock (NLM and NFSv4 alike) so that clients of a server that
# restarted may reclaim theirs: 90 s by default, the shortest it accepts here (rpc.nfsd(8) --grace-time, --lease-time:
# "Valid range is from 10 to 3600 seconds"). A fresh server has no client to wait for; the cases' first locks still
# wait for its end.
NFSD_GRACE = "10"
MOUNT_VERSION = {"nfs3": ("nfs", "vers=3,proto=tcp"), "nfs4.2": ("nfs4", "vers=4.2")}


def _nfs(name: str, base: str, mnt: str) -> list[Step]:
    """The kernel's NFS server exporting a tmpfs, its client mounting it over loopback with the protocol version of
    `name`: NFSv3 locks go through the NLM protocol (the kernel's lockd, rpc.statd watching the peers), NFSv4's are
    operations of the protocol itself (RFC 7530 section 9; RFC 7862 for 4.2)."""
    export, host = f"{base}/{name}-export", "127.0.0.1"
    fstype, options = MOUNT_VERSION[name]
    source = f"{host}:/" if fstype == "nfs4" else f"{host}:{export}"  # NFSv4 names paths from its root, the export
    return [*_tmpfs(export), _open_to_all(export),
            *_tmpfs(NFS_STATE), _mkdir(f"{NFS_STATE}/sm", f"{NFS_STATE}/sm.bak", f"{NFS_STATE}/v4recovery"),
            Step("make the export tables", ("touch", f"{NFS_STATE}/etab", f"{NFS_STATE}/rmtab")),
            Step(f"mount the nfsd filesystem on {NFSD_FS}", ("mount", "-t", "nfsd", "nfsd", NFSD_FS),
                 undo=_unmount(NFSD_FS)),
            _daemon("rpcbind"), _daemon("rpc.statd", "--no-notify"),
            Step(f"export {export}", ("exportfs", "-o", EXPORT_OPTIONS, f"{host}:{export}"),
                 undo=(("exportfs", "-u", f"{host}:{export}"),)),
            _daemon("rpc.mountd"),
            Step("start the kernel's NFS server", ("rpc.nfsd", "--grace-time", NFSD_GRACE, "--lease-time", NFSD_GRACE,
                                                   NFSD_THREADS), undo=(("rpc.nfsd", "0"),)),
            _mkdir(mnt),
            Step(f"mount {source} over NFS ({options}) on {mnt}", ("mount", "-t", fstype, "-o", options, source, mnt),
                 undo=(("umount", mnt), ("umount", "--force", mnt), ("umount", "--lazy", mnt)))]


def plan(name: str, base: str) -> Plan:
    """How to mount the filesystem `name` (one of FILESYSTEMS) under the run's temporary directory `base`."""
    mnt = f"{base}/{name}"
    if name == "tmpfs":
        steps = _tmpfs(mnt)
    elif name in MKFS:
        steps = _loop(name, base, mnt)
    elif name == "overlay":
        # The lower layer on ext4, the upper and work directories on a tmpfs: files the cases make are new, so they
        # live in the upper layer; the lower one holds what a copy-up would start from.
        lower, upper = f"{base}/overlay-lower", f"{base}/overlay-upper"
        options = f"lowerdir={lower}/lower,upperdir={upper}/upper,workdir={upper}/work"
        steps = [*_loop("ext4", base, lower), _mkdir(f"{lower}/lower"), *_tmpfs(upper),
                 _mkdir(f"{upper}/upper", f"{upper}/work", mnt),
                 Step(f"mount overlay on {mnt}", ("mount", "-t", "overlay", "overlay", "-o", options, mnt),
                      undo=_unmount(mnt))]
    elif name in ("bindfs", "bindfs-forwarding"):
        # bindfs mirrors a directory on a tmpfs through FUSE. Plain, it implements no lock operation, so the kernel's
        # FUSE driver keeps the locks itself (libfuse's fuse.h, on `lock`: "If this method is not implemented, the
        # kernel will still allow file locking to work locally"); with --enable-lock-forwarding it implements `lock`
        # and `flock` by taking them on the source file, which bindfs(1) allows only --multithreaded. The subtype
        # names the mount's type (fuse.bindfs, fuse.bindfs-forwarding), and so each report's platform id;
        # allow_other lets the unprivileged run in.
        source = f"{base}/{name}-source"
        forwarding = ("--multithreaded", "--enable-lock-forwarding") if name == "bindfs-forwarding" else ()
        steps = [*_tmpfs(source, _unmount_fuse_source(source)), _mkdir(mnt),
                 Step(f"mount {name} on {mnt}", ("bindfs", "-o", f"allow_other,fsname={name},subtype={name}",
                                                  *forwarding, source, mnt), undo=_unmount_fuse(mnt))]
    elif name in IN_GUEST:
        return Plan(name, mnt, tuple([*_nfs(name, base, mnt), _open_to_all(mnt)]), helpers=("mount.nfs",))
    else:
        raise ValueError(f"no plan for {name}")
    return Plan(name, mnt, tuple([*steps, _open_to_all(mnt)]))
