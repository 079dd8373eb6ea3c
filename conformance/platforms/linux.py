"""Linux facts. seen = observed on Linux 6.18 x86-64; the other marks as in conformance.platforms."""

import struct

from .facts import Facts

FACTS = Facts(
    NAME="linux",
    ALWAYS_HAS={
        "scm_rights": "unix(7): SCM_RIGHTS (every Linux release)",
        "sock_stream": "unix(7): SOCK_STREAM",
        "sock_dgram": "unix(7): SOCK_DGRAM",
        "sock_seqpacket": "unix(7): SOCK_SEQPACKET (since Linux 2.6.4)",
        "msg_cmsg_cloexec": "recvmsg(2): MSG_CMSG_CLOEXEC (since Linux 2.6.23)",
        "so_peercred": "unix(7): SO_PEERCRED",
        "so_passcred": "unix(7): SO_PASSCRED",
        "scm_credentials": "unix(7): SCM_CREDENTIALS",
    },

    # Where a process lists its own descriptors (procfs, always mounted on the systems we support).
    FD_DIR="/proc/self/fd",
    # Its entries are symbolic links to the file, or "pipe:[inode]", "socket:[inode]" (proc(5)) (seen).
    FD_LINKS="/proc/self/fd",

    # CMSG data alignment: sizeof(long) on every architecture (include/linux/socket.h CMSG_ALIGN; glibc
    # bits/socket.h aligns to sizeof(size_t), the same size on Linux): 8 on x86-64 (seen), 4 on 32-bit machines.
    CMSG_ALIGNMENT=struct.calcsize("l"),

    # Messages built by hand (src): glibc bits/socket.h and include/linux/socket.h struct user_msghdr { void
    # *msg_name; int msg_namelen; struct iovec *msg_iov; size_t msg_iovlen; void *msg_control; size_t msg_controllen;
    # unsigned msg_flags; } and struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }: size_t fields, so
    # 56 and 16 bytes on LP64, 28 and 12 on 32-bit machines (musl pads socklen_t/int fields to the same offsets).
    # struct iovec { void *iov_base; size_t iov_len; } (include/uapi/linux/uio.h). sendmsg/recvmsg are in the C
    # library. PROT_NONE 0x0 (include/uapi/asm-generic/mman-common.h).
    IOVEC_FORMAT="PN",
    MSGHDR_FORMAT="PIPNPNi0P",
    CMSGHDR_FORMAT="Nii",
    MSG_FUNCTIONS=("sendmsg", "recvmsg"),
    MSG_LIBRARIES=(None,),
    PROT_NONE=0x0,

    # MSG_CMSG_CLOEXEC (include/linux/socket.h); used when the socket module lacks the name.
    MSG_CMSG_CLOEXEC=0x40000000,

    # The unix socket table, used to prove that garbage-collected sockets are gone (net/unix/af_unix.c).
    UNIX_SOCKET_TABLE="/proc/net/unix",

    # struct sockaddr_un's sun_path[UNIX_PATH_MAX], UNIX_PATH_MAX 108 (include/uapi/linux/un.h; glibc sys/un.h)
    # (seen).
    SUN_PATH_SIZE=108,

    # The per-process list of children (fs/proc/array.c, CONFIG_PROC_CHILDREN).
    CHILDREN_FILE="/proc/self/task/{tid}/children",

    # Mount table with one line per mount (fs/proc_namespace.c).
    MOUNTINFO="/proc/self/mountinfo",
    # It lists only the mounts reachable from the reader's root (fs/proc_namespace.c show_mountinfo skips the others):
    # in a chroot whose root is no mount point, no line holds the chroot's own files (seen in a Debian chroot), so
    # statfs(2) names their filesystem by f_type. f_type opens struct statfs and statfs64 as __fsword_t, a long
    # (int on i386, 4 bytes like its long), except s390x's unsigned int (glibc sysdeps/unix/sysv/linux/bits/statfs.h,
    # sysdeps/unix/sysv/linux/s390/bits/statfs.h) (src). The magic numbers are include/uapi/linux/magic.h's, named
    # as mountinfo names the filesystem (src); ext2, ext3 and ext4 share EXT4_SUPER_MAGIC, and ext4's driver mounts
    # ext3 since 4.3, which removed the ext3 driver: "ext4" (a filesystem mounted by the ext2 driver says ext4 here).
    # A 32-bit glibc converts the struct flock of F_GETLK, F_SETLK, F_SETLKW and the OFD commands into a struct
    # flock64 in user space before the fcntl64 syscall (glibc 06ab719d30, BZ#20251; LTP testcases/kernel/syscalls/
    # fcntl/fcntl_common.h calls the syscall itself for that reason) (src): an unreadable one is a SIGSEGV there, not
    # the kernel's EFAULT (seen: i686 on x86_64). fcntl64 is 221 on i386 (arch/x86/entry/syscalls/syscall_32.tbl
    # "221 i386 fcntl64 sys_fcntl64 compat_sys_fcntl64") (src); 64-bit C libraries pass the argument through.
    FCNTL_SYSCALL={"i686": 221},
    # A 32-bit userland on a 64-bit kernel: uname(2) says i686 (x86) or armv8l (arm64) under PER_LINUX32
    # (setarch i686; kernel/sys.c override_architecture, COMPAT_UTS_MACHINE in arch/x86/include/asm/compat.h and
    # arch/arm64/include/asm/compat.h) (src), while /proc/sys/kernel/arch is the uts namespace's own machine, which no
    # personality rewrites (kernel/utsname_sysctl.c) (seen: x86_64 under setarch i686). Without the personality,
    # uname says the kernel's machine and only the interpreter's ELF class tells a 32-bit userland (src).
    KERNEL_MACHINE="/proc/sys/kernel/arch",
    COMPAT_MACHINES={"x86_64": "i686", "aarch64": "armv8l"},
    STATFS_TYPE_CODE={"": "l", "s390x": "I"},
    STATFS_MAGIC={0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x6969: "nfs",
                  0x794C7630: "overlay", 0x858458F6: "ramfs", 0xF2F52010: "f2fs", 0x65735546: "fuse",
                  0x01021997: "9p", 0x73717368: "squashfs", 0xCA451A4E: "bcachefs", 0x4D44: "vfat",
                  0xFE534D42: "smb3", 0xFF534D42: "cifs", 0x9FA0: "proc", 0x62656572: "sysfs", 0x1CD1: "devpts",
                  0x19800202: "mqueue"},

    # flock and fcntl locks are kept apart, flc_flock and flc_posix (fs/locks.c), and never conflict on a local
    # filesystem (flock(2) NOTES) (seen: locks.flock_vs_fcntl).
    FLOCK_VS_FCNTL="independent",

    # struct flock with 64-bit offsets (CPython is built with _FILE_OFFSET_BITS=64: struct flock64 and F_GETLK64 on a
    # 32-bit machine): l_type, l_whence, l_start, l_len, l_pid, then padding to the alignment of a 64-bit integer,
    # 8 bytes (32 in all) except on i386, whose ABI aligns it to 4 (24 in all) (include/uapi/asm-generic/fcntl.h
    # struct flock64; arch/x86/include/asm/compat.h compat_flock64, packed) (src; seen: x86_64 and i686 on x86_64).
    FLOCK_FORMAT="hhqqi0q",
    FLOCK_FIELDS=("l_type", "l_whence", "l_start", "l_len", "l_pid"),
    F_RDLCK=0, F_WRLCK=1, F_UNLCK=2,

    # Classic record-lock commands F_GETLK, F_SETLK, F_SETLKW: include/uapi/asm-generic/fcntl.h (seen).
    F_GETLK=5, F_SETLK=6, F_SETLKW=7,

    # Every lock and every blocked waiter ("->" lines), to confirm a waiter positively (fs/locks.c) (seen).
    PROC_LOCKS="/proc/locks",
    # Filesystems whose file_operations lock and flock pass requests on, so that a waiter may sleep outside the
    # kernel's lists: nfs and nfs4 (fs/nfs/file.c nfs_lock, nfs_flock: NLM, fs/lockd/clntproc.c, or NFSv4 LOCK,
    # fs/nfs/nfs4proc.c) (seen: reports/filesystems/evidence, a flock waiter behind a fcntl lock is not listed);
    # cifs and smb3 (fs/smb/client/file.c cifs_lock, cifs_flock), ceph (fs/ceph/locks.c), 9p (fs/9p/vfs_file.c
    # v9fs_file_lock_dotl), gfs2 and ocfs2 (fs/gfs2/file.c gfs2_lock, fs/ocfs2/locks.c: the DLM) and afs
    # (fs/afs/flock.c) (src). A FUSE filesystem forwards locks only if its daemon implements them, which its type
    # does not tell: left out, as the kernel keeps the locks of the rest.
    REMOTE_LOCK_FILESYSTEMS=frozenset({"nfs", "nfs4", "cifs", "smb3", "ceph", "9p", "gfs2", "ocfs2", "afs"}),

    # Open file description locks (include/uapi/asm-generic/fcntl.h, 3.15+) (seen).
    F_OFD_GETLK=36, F_OFD_SETLK=37, F_OFD_SETLKW=38,

    # pidfd_getfd(2) (5.6+) is 438 wherever the kernel numbers its syscalls from the shared table: since 5.1
    # (pidfd_send_signal, 424) every new syscall takes the same number on every architecture (src):
    # include/uapi/asm-generic/unistd.h "#define __NR_pidfd_getfd 438" (arm64, riscv, loongarch...),
    # arch/x86/entry/syscalls/syscall_64.tbl "438 common pidfd_getfd" (x86-64 and x32) and syscall_32.tbl
    # "438 i386 pidfd_getfd" (i686, also a 32-bit userland on an x86-64 kernel), arch/arm/tools/syscall.tbl,
    # arch/powerpc, s390, sparc, parisc, m68k, sh, xtensa and microblaze's syscall.tbl alike. Alpha's table is offset
    # by 110 (arch/alpha/kernel/syscalls/syscall.tbl "548 common pidfd_getfd"), and MIPS adds 4000, 5000 or 6000 by
    # ABI, which the machine name does not tell: no number there rather than a wrong one.
    SYSCALL_PIDFD_GETFD={"": 438, "alpha": 548, "mips": None},

    # Socket options newer than some Pythons (include/uapi/asm-generic/socket.h; x86-64 and arm64 use it) (doc).
    SO_PASSPIDFD=76, SO_PEERPIDFD=77, SCM_PIDFD=0x04,
    SO_PASSRIGHTS=83,
    # SO_RIGHTS_NOTRUNC: 85, the number tools/testing/selftests/net/af_unix/scm_rights_denial_lsm.c (91ec203)
    # defines where the headers lack it (src), on the generic table (x86-64, arm64) like the options above. 6.18 has
    # no such option: setsockopt of 85 fails ENOPROTOOPT (seen), and the probe so_rights_notrunc tries it first.
    SO_RIGHTS_NOTRUNC=85,

    # Per-message credentials (include/uapi/asm-generic/socket.h, include/linux/socket.h): SO_PASSCRED on the
    # receiver, SCM_CREDENTIALS carrying struct ucred { pid_t pid; uid_t uid; gid_t gid; } (seen). SO_PASSCRED is 16
    # on the generic table (x86-64, arm64); a few old architectures differ, where Python's own name is used first.
    SO_PASSCRED=16,
    SCM_CREDENTIALS=0x02,
    UCRED_FORMAT="=iII",

    # Connect-time peer credentials: getsockopt(SOL_SOCKET, SO_PEERCRED) returns struct ucred (seen); the peer's
    # pidfd is in SO_PEERPIDFD and SCM_PIDFD (above). A pidfd's pid is the "Pid:" line of its fdinfo (fs/pidfs.c)
    # (seen).
    SO_PEERCRED=17,
    PIDFD_FDINFO="/proc/self/fdinfo/{fd}",
    # SO_PEERGROUPS (4.13): the peer's supplementary groups at connect time as gid_t[] (net/core/sock.c). 59 in
    # include/uapi/asm-generic/socket.h and in the own headers of alpha, mips and powerpc; 0x4034 in
    # arch/parisc/include/uapi/asm/socket.h and 0x003d in arch/sparc/include/uapi/asm/socket.h (src).
    SO_PEERGROUPS_BY_MACHINE={"": 59, "parisc": 0x4034, "sparc": 0x003D},
    # ioctl(pidfd, PIDFD_GET_INFO, struct pidfd_info *) (6.13; exit status 6.15): _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11,
    # struct pidfd_info) in include/uapi/linux/pidfd.h (src). The structure is extensible and the kernel takes its
    # size from the request: the first published one, PIDFD_INFO_SIZE_VER0 = 64 bytes, ends with the exit status:
    # { __u64 mask, cgroupid; __u32 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    # __s32 exit_code; } (src). PIDFD_INFO_EXIT (1 << 3) asks for the exit status and says it is filled in (src).
    PIDFD_GET_INFO=(0xFF, 11),
    PIDFD_INFO_FORMAT="=QQ11Ii",
    PIDFD_INFO_EXIT=1 << 3,
    # _IOC's layout (src): include/uapi/asm-generic/ioctl.h, which most architectures use: 14 size bits, _IOC_READ 2,
    # _IOC_WRITE 1, _IOC_NONE 0; arch/parisc/include/uapi/asm/ioctl.h swaps READ 1 and WRITE 2; the own headers of
    # alpha, mips, powerpc (machine names ppc*) and sparc have 13 size bits and a third direction bit: READ 2, WRITE 4,
    # NONE 1 (sparc's size may spill into the NONE bit, which changes no request with a direction).
    IOC_ENCODING={"": (14, 2, 1, 0), "parisc": (14, 1, 2, 0), "alpha": (13, 2, 4, 1), "mips": (13, 2, 4, 1),
                  "ppc": (13, 2, 4, 1), "powerpc": (13, 2, 4, 1), "sparc": (13, 2, 4, 1)},

    # prctl(PR_SET_CHILD_SUBREAPER): orphaned grandchildren of the suite become its children, so the
    # leak check sees them (include/uapi/linux/prctl.h) (doc).
    PR_SET_CHILD_SUBREAPER=36,
    # /proc/<pid> for every process, owned by its effective uid and gid (root's where it is not dumpable)
    # (proc_pid(5)) (doc).
    PROC_ROOT="/proc",

    # Channel-independent duplication (conformance/duplication.py). A process's start time, in clock ticks since
    # boot, is field 22 of /proc/<pid>/stat (proc(5)): with the pid it names one process for the life of the system
    # (seen).
    PROC_STAT="/proc/{pid}/stat",
    # Opening a process's descriptor by path makes a new open file description (fs/proc/fd.c proc_fd_link) (seen).
    PROC_PID_FD="/proc/{pid}/fd/{fd}",
    # Yama's ptrace restriction, 0..3, where the LSM is built in (Documentation/admin-guide/LSM/Yama.rst) (doc).
    YAMA_PTRACE_SCOPE="/proc/sys/kernel/yama/ptrace_scope",
    # prctl options (include/uapi/linux/prctl.h): PR_SET_DUMPABLE 4, PR_SET_PTRACER 0x59616d61 ("Yama"), and
    # PR_SET_PTRACER_ANY ((unsigned long)-1) (doc).
    PR_SET_DUMPABLE=4,
    PR_SET_PTRACER=0x59616D61,
    PR_SET_PTRACER_ANY=-1,

    # POSIX message queues: mq_* are in libc since glibc 2.34, in librt before (both tried, in order) (seen). mqd_t is
    # an int (a descriptor); struct mq_attr is four longs and four reserved longs (glibc
    # bits/types/struct_mq_attr.h, include/uapi/linux/mqueue.h) (seen).
    MQ_LIBRARIES=(None, "rt"),
    MQD_IS_POINTER=False,
    MQ_ATTR_FORMAT="@8l",

    # ld.so(8): LD_PRELOAD; dlsym(3) is in libdl before glibc 2.34 (doc).
    SHARED_LIBRARY_FLAGS=("-shared", "-fPIC"),
    SHARED_LIBRARY_LDLIBS=("-ldl",),
    PRELOAD_ENVIRONMENT={"LD_PRELOAD": "{library}"},
)
