"""macOS (XNU) constants and layouts. Not run here: each value cites its source.

Same names as linux.py; None means "this OS has no such thing".
"""

NAME = "darwin"

# devfs provides /dev/fd with every open descriptor (fdesc in bsd/miscfs/devfs) (src).
FD_DIR = "/dev/fd"

# bsd/sys/socket.h __DARWIN_ALIGN32: cmsg data is 4-byte aligned even on LP64 (src).
CMSG_ALIGNMENT = 4

# No MSG_CMSG_CLOEXEC in bsd/sys/socket.h (src).
MSG_CMSG_CLOEXEC = None

INFLIGHT_LIMIT_ERRNO = None
UNIX_SOCKET_TABLE = None
CHILDREN_FILE = None
MNTTAB = None
MOUNTINFO = None

# struct flock: l_start, l_len, l_pid, l_type, l_whence (bsd/sys/fcntl.h) (src).
FLOCK_FORMAT = "qqihh"
FLOCK_FIELDS = ("l_start", "l_len", "l_pid", "l_type", "l_whence")
F_RDLCK, F_WRLCK, F_UNLCK = 1, 3, 2

# Classic record-lock commands F_GETLK, F_SETLK, F_SETLKW: bsd/sys/fcntl.h (src).
F_GETLK, F_SETLK, F_SETLKW = 7, 8, 9

PROC_LOCKS = None

# OFD locks: F_OFD_SETLK 90, F_OFD_SETLKW 91, F_OFD_GETLK 92 (bsd/sys/fcntl.h, public from macOS 14) (src).
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 92, 90, 91

SYSCALL_PIDFD_GETFD = {}
I_SENDFD = I_RECVFD = I_NREAD = None
STRBUF_FORMAT = STRRECVFD_FORMAT = MORECTL = MOREDATA = None

# Linux socket options (SO_PASSPIDFD, SO_PEERPIDFD, SCM_PIDFD, SO_PASSRIGHTS): none here.
SO_PASSPIDFD = SO_PEERPIDFD = SCM_PIDFD = SO_PASSRIGHTS = None


# No per-message credentials: SCM_CREDS (3) is defined but sendmsg refuses it with EINVAL
# (bsd/kern/uipc_usrreq.c unp_internalize) (src). No SO_PASSCRED/SCM_CREDENTIALS.
SO_PASSCRED = SCM_CREDENTIALS = None
UCRED_FORMAT = None
SCM_CREDS = 0x03
CMSGCRED_FORMAT = None
# Connect-time peer credentials: getsockopt(SOL_LOCAL = 0, LOCAL_PEERCRED = 1) returns struct xucred
# { u_int version; uid_t uid; short ngroups; gid_t groups[16]; }, 76 bytes, no pid (bsd/sys/un.h,
# bsd/sys/ucred.h) (src).
SOL_LOCAL, LOCAL_PEERCRED = 0, 1
XUCRED_FORMAT = "=IIh2x16I"

# LOCAL_PEERPID (2): the pid of the process that last used the peer socket, not necessarily its creator
# (bsd/sys/un.h, bsd/kern/uipc_usrreq.c) (src). No LOCAL_CREDS, SO_PEERCRED or pidfds.
LOCAL_PEERPID = 2
LOCAL_CREDS = LOCAL_CREDS_PERSISTENT = SCM_CREDS2 = None
SOCKCRED_FORMAT = SOCKCRED2_FORMAT = None
SO_PEERCRED = None
PIDFD_FDINFO = None

PR_SET_CHILD_SUBREAPER = PROC_REAP_ACQUIRE = None

# Extra linker arguments for the C peers (conformance/native): none, the socket calls are in libSystem.
NATIVE_LDLIBS = ()

# Channel-independent duplication: pidfd_getfd is Linux-only, so neither procfs paths, Yama, nor the POSIX message
# queue layout (a channel only that case uses) are recorded here.
PROC_STAT = PROC_PID_FD = YAMA_PTRACE_SCOPE = None
PR_SET_DUMPABLE = PR_SET_PTRACER = PR_SET_PTRACER_ANY = None
MQ_LIBRARIES = MQD_IS_POINTER = MQ_ATTR_FORMAT = None
