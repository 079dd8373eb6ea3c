"""Fallback for an OS the suite has no facts about: every mechanism is probed, nothing is assumed."""

NAME = "generic"
FD_DIR = None
CMSG_ALIGNMENT = None
MSG_CMSG_CLOEXEC = None
INFLIGHT_LIMIT_ERRNO = None
UNIX_SOCKET_TABLE = None
CHILDREN_FILE = None
MOUNTINFO = None
FLOCK_FORMAT = None
FLOCK_FIELDS = ()
F_RDLCK = F_WRLCK = F_UNLCK = None
F_OFD_GETLK = F_OFD_SETLK = F_OFD_SETLKW = None
SYSCALL_PIDFD_GETFD = {}
I_SENDFD = I_RECVFD = I_NREAD = None

# Linux socket options (SO_PASSPIDFD, SO_PEERPIDFD, SCM_PIDFD, SO_PASSRIGHTS): none here.
SO_PASSPIDFD = SO_PEERPIDFD = SCM_PIDFD = SO_PASSRIGHTS = None

PR_SET_CHILD_SUBREAPER = None
