"""Linux facts. seen = observed on Linux 6.18 x86-64; the other marks as in conformance.platforms."""

from .facts import Facts

FACTS = Facts(
    NAME="linux",

    # Where a process lists its own descriptors (procfs, always mounted on the systems we support).
    FD_DIR="/proc/self/fd",
    # Its entries are symbolic links to the file, or "pipe:[inode]", "socket:[inode]" (proc(5)) (seen).
    FD_LINKS="/proc/self/fd",

    # CMSG data alignment: sizeof(long) (seen on x86-64; include/linux/socket.h CMSG_ALIGN).
    CMSG_ALIGNMENT=8,

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

    # struct flock: l_type, l_whence, l_start, l_len, l_pid (+4 bytes padding on LP64) (seen).
    FLOCK_FORMAT="hhqqi4x",
    FLOCK_FIELDS=("l_type", "l_whence", "l_start", "l_len", "l_pid"),
    F_RDLCK=0, F_WRLCK=1, F_UNLCK=2,

    # Classic record-lock commands F_GETLK, F_SETLK, F_SETLKW: include/uapi/asm-generic/fcntl.h (seen).
    F_GETLK=5, F_SETLK=6, F_SETLKW=7,

    # Every lock and every blocked waiter ("->" lines), to confirm a waiter positively (fs/locks.c) (seen).
    PROC_LOCKS="/proc/locks",

    # Open file description locks (include/uapi/asm-generic/fcntl.h, 3.15+) (seen).
    F_OFD_GETLK=36, F_OFD_SETLK=37, F_OFD_SETLKW=38,

    # pidfd_getfd(2) has the same number in the generic and x86-64 syscall tables (5.6+) (doc).
    SYSCALL_PIDFD_GETFD={"x86_64": 438, "aarch64": 438, "arm64": 438},

    # Socket options newer than some Pythons (include/uapi/asm-generic/socket.h; x86-64 and arm64 use it) (doc).
    SO_PASSPIDFD=76, SO_PEERPIDFD=77, SCM_PIDFD=0x04,
    SO_PASSRIGHTS=83,

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
)
