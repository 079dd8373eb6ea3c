"""FreeBSD constants and layouts (amd64/arm64, LP64). Not run here: each value cites its source.

Same names as linux.py; None means "this OS has no such thing".
"""

NAME = "freebsd"

# /dev/fd shows only 0-2 unless fdescfs is mounted (fdescfs(5)); the harness checks before trusting it.
FD_DIR = "/dev/fd"

# sys/sys/socket.h _ALIGNBYTES on LP64 (src).
CMSG_ALIGNMENT = 8

# sys/sys/socket.h MSG_CMSG_CLOEXEC 0x00040000 (src).
MSG_CMSG_CLOEXEC = 0x00040000

# No per-user in-flight descriptor limit is documented (PLATFORM-FACTS.md: ?).
INFLIGHT_LIMIT_ERRNO = None

UNIX_SOCKET_TABLE = None
CHILDREN_FILE = None
MOUNTINFO = None

# struct flock: l_start, l_len, l_pid, l_type, l_whence, l_sysid (sys/sys/fcntl.h) (src).
FLOCK_FORMAT = "qqihhi4x"
FLOCK_FIELDS = ("l_start", "l_len", "l_pid", "l_type", "l_whence", "l_sysid")
F_RDLCK, F_WRLCK, F_UNLCK = 1, 3, 2

# No open file description locks (sys/kern/kern_descrip.c has no F_OFD_*) (src).
F_OFD_GETLK = F_OFD_SETLK = F_OFD_SETLKW = None

SYSCALL_PIDFD_GETFD = {}
I_SENDFD = I_RECVFD = I_NREAD = None

# Linux socket options (SO_PASSPIDFD, SO_PEERPIDFD, SCM_PIDFD, SO_PASSRIGHTS): none here.
SO_PASSPIDFD = SO_PEERPIDFD = SCM_PIDFD = SO_PASSRIGHTS = None

PR_SET_CHILD_SUBREAPER = None
