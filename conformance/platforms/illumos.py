"""illumos facts (amd64, LP64). Not run here: each value cites its source (marks as in conformance.platforms)."""

from .facts import Facts

FACTS = Facts(
    NAME="illumos",
    ALWAYS_HAS={
        "scm_rights": "socket.h(3HEAD): SCM_RIGHTS",
        "sock_stream": "socket(3SOCKET): SOCK_STREAM",
        "sock_dgram": "socket(3SOCKET): SOCK_DGRAM",
    },

    # procfs lists descriptors under /proc/self/fd (proc(5)) (doc).
    FD_DIR="/proc/self/fd",

    # usr/src/uts/common/sys/socket.h: _CMSG_HDR_ALIGNMENT 4 and _CMSG_DATA_ALIGNMENT sizeof(int) on x86 (8 on SPARC)
    # (src).
    CMSG_ALIGNMENT=4,

    # Messages built by hand (src): usr/src/uts/common/sys/socket.h struct msghdr has msg_control, msg_controllen
    # (socklen_t) and msg_flags only under _XPG4_2 { void *msg_name; socklen_t msg_namelen; struct iovec *msg_iov; int
    # msg_iovlen; void *msg_control; socklen_t msg_controllen; int msg_flags; } (48 bytes on LP64), and that header
    # renames sendmsg/recvmsg to __xnet_sendmsg/__xnet_recvmsg, which live in libsocket (golang.org/x/sys
    # unix/zsyscall_solaris_amd64.go imports them from libsocket.so): the plain names take the old msg_accrights
    # layout. struct cmsghdr { socklen_t cmsg_len; int cmsg_level; int cmsg_type; } (12 bytes); struct iovec { caddr_t
    # iov_base; size_t iov_len; } (usr/src/uts/common/sys/uio.h). PROT_NONE 0x0 (usr/src/uts/common/sys/mman.h).
    IOVEC_FORMAT="PN",
    MSGHDR_FORMAT="PIPiPIi0P",
    CMSGHDR_FORMAT="Iii",
    MSG_FUNCTIONS=("__xnet_sendmsg", "__xnet_recvmsg"),
    MSG_LIBRARIES=("socket", None),
    PROT_NONE=0x0,

    # struct sockaddr_un's char sun_path[108] (usr/src/uts/common/sys/un.h) (src).
    SUN_PATH_SIZE=108,

    # No MSG_CMSG_CLOEXEC among the MSG_* flags of usr/src/uts/common/sys/socket.h (src); Python's name wins if
    # present.

    # The mount table, one tab-separated line per mount: special, mount point, fstype, options, time (mnttab(5))
    # (doc). illumos mount(8) without -v prints no filesystem type at all, so this file is what detect.py reads.
    MNTTAB="/etc/mnttab",

    # struct flock (LP64): short l_type, l_whence; off_t l_start, l_len; int l_sysid; pid_t l_pid; long l_pad[4]:
    # 64 bytes, the pad alone is 32 (usr/src/uts/common/sys/fcntl.h; golang.org/x/sys unix/ztypes_solaris_amd64.go
    # Flock_t has Pad [4]int64) (src). A 16-byte pad was 16 bytes short of what the kernel writes back.
    FLOCK_FORMAT="hhqqii32x",
    FLOCK_FIELDS=("l_type", "l_whence", "l_start", "l_len", "l_sysid", "l_pid"),
    F_RDLCK=1, F_WRLCK=2, F_UNLCK=3,

    # Classic record-lock commands F_GETLK, F_SETLK, F_SETLKW: usr/src/uts/common/sys/fcntl.h, the _LP64 values;
    # F_RDLCK 1, F_WRLCK 2, F_UNLCK 3 (same header; golang.org/x/sys unix/zerrors_solaris_amd64.go agrees) (src).
    F_GETLK=14, F_SETLK=6, F_SETLKW=7,

    # OFD locks: F_OFD_GETLK 47, F_OFD_SETLK 48, F_OFD_SETLKW 49 for _LP64 (sys/fcntl.h of the illumos derivatives
    # that carry them, unless _STRICT_SYMBOLS; golang.org/x/sys unix/zerrors_solaris_amd64.go lists 0x2f-0x31) (src).
    # An illumos-gate sys/fcntl.h without them is possible (?): the ofd_locks probe tries the command before any
    # case uses it.
    F_OFD_GETLK=47, F_OFD_SETLK=48, F_OFD_SETLKW=49,

    # STREAMS ioctls, STR = 'S' << 8 (usr/src/uts/common/sys/stropts.h): I_NREAD = STR|01, I_SENDFD = STR|021, and
    # the user-level I_RECVFD = STR|016 (the kernel's I_E_RECVFD; STR|022 is the kernel-internal one) (src).
    I_NREAD=0x5301, I_RECVFD=0x530E, I_SENDFD=0x5311,
    # struct strbuf { int maxlen; int len; caddr_t buf; }: 16 bytes on LP64 (usr/src/uts/common/sys/stropts.h)
    # (src).
    STRBUF_FORMAT="iiP",
    # struct strrecvfd { int fd; uid_t uid; gid_t gid; char fill[8]; }, uid_t and gid_t unsigned int: 20 bytes,
    # what the user-level I_RECVFD (kernel I_E_RECVFD) copies out (sys/stropts.h, sys/types.h; os/streamio.c
    # strioctl) (src).
    STRRECVFD_FORMAT="iII8x",
    # getmsg(2)'s return value: MORECTL 1, MOREDATA 2, "more ... is left in message" (sys/stropts.h) (src).
    MORECTL=1, MOREDATA=2,

    # Credentials travel as ucred_t (SO_RECVUCRED 0x400 / SCM_UCRED 0x1012 per message, getpeerucred(3C) per
    # connection), an opaque layout that the suite does not decode yet. None of the Linux or BSD names exists
    # (usr/src/uts/common/sys/socket.h; golang.org/x/sys unix/zerrors_solaris_amd64.go lists none of them) (src).

    # The C peers use the X/Open sendmsg/recvmsg (msg_control exists only with _XPG4_2:
    # usr/src/uts/common/sys/socket.h), which <sys/socket.h> renames to __xnet_sendmsg/__xnet_recvmsg, found in
    # libsocket (golang.org/x/sys unix/zsyscall_solaris_amd64.go imports them from libsocket.so); socket(3SOCKET)
    # says link -lsocket -lnsl (doc).
    NATIVE_LDLIBS=("-lsocket", "-lnsl"),

    # Channel-independent duplication: pidfd_getfd is Linux-only, so neither procfs paths, Yama, nor the POSIX
    # message queue layout (a channel only that case uses) are recorded here.

    # ld.so.1(1): LD_PRELOAD; dlsym(3C) is in libc since Solaris 10 (doc).
    SHARED_LIBRARY_FLAGS=("-shared", "-fPIC"),
    PRELOAD_ENVIRONMENT={"LD_PRELOAD": "{library}"},
)
