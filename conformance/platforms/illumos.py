"""illumos constants and layouts. Not run here; unverified values are marked '?'.

Same names as linux.py; None means "this OS has no such thing".
"""

NAME = "illumos"

# procfs lists descriptors under /proc/self/fd (proc(5)) (doc).
FD_DIR = "/proc/self/fd"

# usr/src/uts/common/sys/socket.h _CMSG_DATA_ALIGNMENT is sizeof(int) on the 64-bit ABIs (?).
CMSG_ALIGNMENT = 4

# No MSG_CMSG_CLOEXEC in illumos sys/socket.h (?); Python's name is used when present.
MSG_CMSG_CLOEXEC = None

INFLIGHT_LIMIT_ERRNO = None
UNIX_SOCKET_TABLE = None
CHILDREN_FILE = None
MOUNTINFO = None

# struct flock (64-bit): l_type, l_whence, l_start, l_len, l_sysid, l_pid, l_pad[4] (sys/fcntl.h) (?).
FLOCK_FORMAT = "hhqqii16x"
FLOCK_FIELDS = ("l_type", "l_whence", "l_start", "l_len", "l_sysid", "l_pid")
F_RDLCK, F_WRLCK, F_UNLCK = 1, 2, 3

# Classic record-lock commands F_GETLK, F_SETLK, F_SETLKW: usr/src/uts/common/sys/fcntl.h, the LP64 values (?).
F_GETLK, F_SETLK, F_SETLKW = 14, 6, 7

PROC_LOCKS = None

# illumos OFD locks (sys/fcntl.h F_OFD_GETLK 47, F_OFD_SETLK 48, F_OFD_SETLKW 49) (?).
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 47, 48, 49

SYSCALL_PIDFD_GETFD = {}

# STREAMS ioctls, STR = 'S' << 8 (sys/stropts.h): I_NREAD = STR|01, I_RECVFD = STR|016, I_SENDFD = STR|021 (?).
I_NREAD, I_RECVFD, I_SENDFD = 0x5301, 0x530E, 0x5311

# Linux socket options (SO_PASSPIDFD, SO_PEERPIDFD, SCM_PIDFD, SO_PASSRIGHTS): none here.
SO_PASSPIDFD = SO_PEERPIDFD = SCM_PIDFD = SO_PASSRIGHTS = None


# Credentials travel as ucred_t (SO_RECVUCRED/SCM_UCRED, getpeerucred(3C)), an opaque layout that the suite
# does not decode yet: none of the Linux or BSD mechanisms (?).
SO_PASSCRED = SCM_CREDENTIALS = None
UCRED_FORMAT = None
SCM_CREDS = None
CMSGCRED_FORMAT = None
SOL_LOCAL = LOCAL_PEERCRED = None
XUCRED_FORMAT = None
LOCAL_CREDS = LOCAL_CREDS_PERSISTENT = SCM_CREDS2 = None
SOCKCRED_FORMAT = SOCKCRED2_FORMAT = None
SO_PEERCRED = None
PIDFD_FDINFO = None
LOCAL_PEERPID = None

PR_SET_CHILD_SUBREAPER = None
