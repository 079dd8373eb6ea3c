"""FreeBSD facts (amd64/arm64, LP64). Not run here: each value cites its source (marks as in conformance.platforms)."""

import struct

from .facts import Facts

FACTS = Facts(
    NAME="freebsd",
    ALWAYS_HAS={
        "scm_rights": "unix(4): SCM_RIGHTS",
        "sock_stream": "unix(4): SOCK_STREAM",
        "sock_dgram": "unix(4): SOCK_DGRAM",
        "sock_seqpacket": "unix(4): SOCK_SEQPACKET (since FreeBSD 9.0)",
        "msg_cmsg_cloexec": "recv(2): MSG_CMSG_CLOEXEC (since FreeBSD 10.0)",
    },

    # /dev/fd shows only 0-2 unless fdescfs is mounted (fdescfs(5)); the harness checks before trusting it.
    FD_DIR="/dev/fd",

    # sys/sys/socket.h CMSG_SPACE/CMSG_LEN align with _ALIGN, whose _ALIGNBYTES is sizeof(void *) - 1 on every
    # architecture (sys/sys/_align.h: "In practice this has always been the size of a pointer"): 8 on LP64 (src).
    CMSG_ALIGNMENT=struct.calcsize("P"),

    # Messages built by hand (src): sys/sys/socket.h struct msghdr { void *msg_name; socklen_t msg_namelen; struct
    # iovec *msg_iov; int msg_iovlen; void *msg_control; socklen_t msg_controllen; int msg_flags; } (48 bytes on LP64)
    # and struct cmsghdr { socklen_t cmsg_len; int cmsg_level; int cmsg_type; } (12 bytes: CMSG_LEN(0) is 16 on LP64);
    # struct iovec { void *iov_base; size_t iov_len; } (sys/sys/_iovec.h). sendmsg/recvmsg are in libc. PROT_NONE 0x00
    # (sys/sys/mman.h).
    IOVEC_FORMAT="PN",
    MSGHDR_FORMAT="PIPiPIi0P",
    CMSGHDR_FORMAT="Iii",
    MSG_FUNCTIONS=("sendmsg", "recvmsg"),
    MSG_LIBRARIES=(None,),
    PROT_NONE=0x00,

    # sys/sys/socket.h MSG_CMSG_CLOEXEC 0x00040000 (src).
    MSG_CMSG_CLOEXEC=0x00040000,

    # struct sockaddr_un's char sun_path[104] (sys/sys/un.h) (src).
    SUN_PATH_SIZE=104,

    # flock goes to the same advisory lock list as fcntl, as a whole-file F_FLOCK lock of the file
    # (sys/kern/kern_descrip.c sys_flock, VOP_ADVLOCK), so the two conflict (src).
    FLOCK_VS_FCNTL="conflicting",

    # struct flock: l_start, l_len, l_pid, l_type, l_whence, l_sysid (sys/sys/fcntl.h) (src).
    FLOCK_FORMAT="qqihhi4x",
    FLOCK_FIELDS=("l_start", "l_len", "l_pid", "l_type", "l_whence", "l_sysid"),
    F_RDLCK=1, F_WRLCK=3, F_UNLCK=2,

    # Classic record-lock commands F_GETLK, F_SETLK, F_SETLKW: sys/sys/fcntl.h; 7/8/9 are the old ABI (src).
    F_GETLK=11, F_SETLK=12, F_SETLKW=13,

    # No open file description locks (sys/kern/kern_descrip.c has no F_OFD_*) (src).

    # Per-message credentials: the sender attaches SCM_CREDS with a struct cmsgcred that the kernel fills in
    # { pid_t pid; uid_t uid, euid; gid_t gid; short ngroups; gid_t groups[CMGROUP_MAX = 16]; }, 84 bytes
    # (sys/sys/socket.h) (src). No SO_PASSCRED/SCM_CREDENTIALS.
    SCM_CREDS=0x03,
    CMSGCRED_FORMAT="=iIIIh2x16I",
    # Connect-time peer credentials: getsockopt(SOL_LOCAL = 0, LOCAL_PEERCRED = 1) returns struct xucred
    # { u_int version; uid_t uid; short ngroups; gid_t groups[16]; union { void *; pid_t pid; } }, 88 bytes on LP64
    # (sys/sys/un.h, sys/sys/ucred.h) (src).
    SOL_LOCAL=0, LOCAL_PEERCRED=1,
    XUCRED_FORMAT="=IIh2x16I4xi4x",

    # Receiver-requested credentials (sys/sys/un.h, sys/sys/socket.h) (src): LOCAL_CREDS delivers SCM_CREDS with
    # struct sockcred { uid, euid, gid, egid; int ngroups; gid_t groups[] } (one-shot on a stream, every datagram);
    # LOCAL_CREDS_PERSISTENT (13+) delivers SCM_CREDS2 with struct sockcred2 { int version; pid_t pid; uid, euid,
    # gid, egid; int ngroups; gid_t groups[] } on every message. Formats cover the fixed part; groups follow.
    LOCAL_CREDS=2, LOCAL_CREDS_PERSISTENT=3, SCM_CREDS2=0x08,
    SOCKCRED_FORMAT="=IIIIi",
    SOCKCRED2_FORMAT="=iiIIIIi",

    # procctl(P_PID, getpid(), PROC_REAP_ACQUIRE, NULL) makes the suite the reaper of its descendants, FreeBSD's
    # counterpart of Linux's child subreaper (sys/sys/procctl.h PROC_REAP_ACQUIRE 2, sys/sys/wait.h P_PID 0;
    # procctl(2), FreeBSD 10.2+) (src). Orphaned grandchildren then show up in ps(1) with the suite as their parent.
    PROC_REAP_ACQUIRE=2,

    # Channel-independent duplication: pidfd_getfd is Linux-only, so neither procfs paths, Yama, nor the POSIX
    # message queue layout (a channel only that case uses) are recorded here.

    # rtld(1): LD_PRELOAD; dlsym(3) is in libc (doc).
    SHARED_LIBRARY_FLAGS=("-shared", "-fPIC"),
    PRELOAD_ENVIRONMENT={"LD_PRELOAD": "{library}"},
)
