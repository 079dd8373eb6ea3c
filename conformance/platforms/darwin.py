"""macOS (XNU) facts. Not run here: each value cites its source (marks as in conformance.platforms)."""

from .facts import Facts

FACTS = Facts(
    NAME="darwin",
    ALWAYS_HAS={
        "scm_rights": "unix(4): SCM_RIGHTS",
        "sock_stream": "unix(4): SOCK_STREAM",
        "sock_dgram": "unix(4): SOCK_DGRAM",
    },

    # devfs provides /dev/fd with every open descriptor (fdesc in bsd/miscfs/devfs) (src).
    FD_DIR="/dev/fd",

    # bsd/sys/socket.h __DARWIN_ALIGN32: cmsg data is 4-byte aligned even on LP64 (src).
    CMSG_ALIGNMENT=4,

    # Messages built by hand (src, xnu-11417.101.15): bsd/sys/socket.h struct msghdr { void *msg_name; socklen_t
    # msg_namelen; struct iovec *msg_iov; int msg_iovlen; void *msg_control; socklen_t msg_controllen; int msg_flags; }
    # (48 bytes on LP64) and struct cmsghdr { socklen_t cmsg_len; int cmsg_level; int cmsg_type; } (12 bytes, which is
    # CMSG_LEN(0) too); struct iovec { void *iov_base; size_t iov_len; } (bsd/sys/_types/_iovec_t.h). sendmsg/recvmsg
    # are in libSystem. PROT_NONE 0x00 (bsd/sys/mman.h).
    IOVEC_FORMAT="PN",
    MSGHDR_FORMAT="PIPiPIi0P",
    CMSGHDR_FORMAT="Iii",
    MSG_FUNCTIONS=("sendmsg", "recvmsg"),
    MSG_LIBRARIES=(None,),
    PROT_NONE=0x00,

    # struct sockaddr_un's char sun_path[104] (bsd/sys/un.h) (src).
    SUN_PATH_SIZE=104,

    # No MSG_CMSG_CLOEXEC in bsd/sys/socket.h (src).

    # flock goes to the same advisory lock list as fcntl, as an F_FLOCK lock (bsd/kern/kern_descrip.c sys_flock,
    # VNOP_ADVLOCK), so the two conflict (src).
    FLOCK_VS_FCNTL="conflicting",

    # struct flock: l_start, l_len, l_pid, l_type, l_whence (bsd/sys/fcntl.h) (src).
    FLOCK_FORMAT="qqihh",
    FLOCK_FIELDS=("l_start", "l_len", "l_pid", "l_type", "l_whence"),
    F_RDLCK=1, F_WRLCK=3, F_UNLCK=2,

    # Classic record-lock commands F_GETLK, F_SETLK, F_SETLKW: bsd/sys/fcntl.h (src).
    F_GETLK=7, F_SETLK=8, F_SETLKW=9,

    # OFD locks: F_OFD_SETLK 90, F_OFD_SETLKW 91, F_OFD_GETLK 92 (bsd/sys/fcntl.h, public from macOS 14) (src).
    F_OFD_GETLK=92, F_OFD_SETLK=90, F_OFD_SETLKW=91,

    # No per-message credentials: SCM_CREDS (3) is defined, "process creds (struct cmsgcred)", but struct cmsgcred
    # is declared only #ifndef __APPLE__, so macOS has none (bsd/sys/socket.h), and sendmsg refuses every control
    # message but SCM_RIGHTS with EINVAL (bsd/kern/uipc_usrreq.c unp_internalize) (src, xnu-11417.101.15). So
    # CMSGCRED_FORMAT stays unset. No SO_PASSCRED/SCM_CREDENTIALS.
    SCM_CREDS=0x03,
    # Connect-time peer credentials: getsockopt(SOL_LOCAL = 0, LOCAL_PEERCRED = 1) returns struct xucred
    # { u_int version; uid_t uid; short ngroups; gid_t groups[16]; }, 76 bytes, no pid (bsd/sys/un.h,
    # bsd/sys/ucred.h) (src).
    SOL_LOCAL=0, LOCAL_PEERCRED=1,
    XUCRED_FORMAT="=IIh2x16I",

    # LOCAL_PEERPID (2): the pid of the process that last used the peer socket, not necessarily its creator
    # (bsd/sys/un.h, bsd/kern/uipc_usrreq.c) (src). No LOCAL_CREDS, SO_PEERCRED or pidfds.
    LOCAL_PEERPID=2,

    # The C peers need no extra library: the socket calls are in libSystem.

    # Channel-independent duplication: pidfd_getfd is Linux-only, so neither procfs paths, Yama, nor the POSIX
    # message queue layout (a channel only that case uses) are recorded here.

    # dyld(1): DYLD_INSERT_LIBRARIES, with a flat namespace so that the library's definitions replace libSystem's;
    # System Integrity Protection removes DYLD_* variables for binaries under /usr and /System (doc).
    SHARED_LIBRARY_FLAGS=("-dynamiclib",),
    PRELOAD_ENVIRONMENT={"DYLD_INSERT_LIBRARIES": "{library}", "DYLD_FORCE_FLAT_NAMESPACE": "1"},
)
