"""What the suite knows about an OS, as one typed record.

Every field but NAME defaults to "this OS has no such thing" (None, an empty tuple or dict); an OS module sets only
what its OS has, each value with its source. The names are the C names where there is one: `lookup()` falls back to
this record for a constant Python's own module lacks, by the same name.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple


@dataclass
class Facts:
    # Which record this is, and the one field every record sets: the OS's name as `os_name()` gives it, "generic"
    # for an OS the suite knows nothing of.
    NAME: str

    # Probes (conformance.platforms.probes) of mechanisms this OS has in every release the suite runs on, each with its
    # source: where one of them fails, the platform is broken, and the case that needs it fails instead of being
    # `unsupported` (a kernel that loses every passed descriptor must not read as "no SCM_RIGHTS here"). Socket
    # mechanisms only: whether locks work depends on the filesystem under test.
    ALWAYS_HAS: Dict[str, str] = field(default_factory=dict)

    # ---- descriptors: listing this process's own, and naming one ---------------------------------------------------
    # A directory listing every open descriptor by number (checked before it is trusted: platforms.descriptors).
    FD_DIR: Optional[str] = None
    # A directory of symbolic links, one per open descriptor, to what it refers to (read for leak messages only).
    FD_LINKS: Optional[str] = None

    # ---- descriptor passing ----------------------------------------------------------------------------------------
    # The alignment of control message data (CMSG_ALIGN), which CMSG_SPACE and CMSG_LEN round to.
    CMSG_ALIGNMENT: Optional[int] = None
    # recvmsg flag: received descriptors are close-on-exec.
    MSG_CMSG_CLOEXEC: Optional[int] = None
    # A table of every UNIX socket with its inode (proves garbage-collected sockets are gone).
    UNIX_SOCKET_TABLE: Optional[str] = None
    # sizeof(sockaddr_un.sun_path): how long a socket's path may be (platforms.socket_paths).
    SUN_PATH_SIZE: Optional[int] = None
    # Linux socket options newer than some Pythons: pidfds of the peer and of each sender, and refusing rights.
    SO_PASSPIDFD: Optional[int] = None
    SO_PEERPIDFD: Optional[int] = None
    SCM_PIDFD: Optional[int] = None
    SO_PASSRIGHTS: Optional[int] = None
    # Linux: a receiver's option asking that a descriptor a security module refuses be reported in its slot
    # (-EPERM) instead of cutting the rights short with MSG_CTRUNC.
    SO_RIGHTS_NOTRUNC: Optional[int] = None

    # ---- messages built by hand (sendmsg/recvmsg through ctypes, for control buffers the socket module cannot make)
    # struct iovec, struct msghdr and struct cmsghdr as native struct module formats, so that their sizes follow the
    # architecture (size_t, pointers); msghdr's fields are msg_name, msg_namelen, msg_iov, msg_iovlen, msg_control,
    # msg_controllen, msg_flags in that order on every OS recorded, cmsghdr's cmsg_len, cmsg_level, cmsg_type.
    IOVEC_FORMAT: Optional[str] = None
    MSGHDR_FORMAT: Optional[str] = None
    CMSGHDR_FORMAT: Optional[str] = None
    # The C functions that take that struct msghdr, (send, receive), and the libraries to look in for them (None is
    # the C library itself).
    MSG_FUNCTIONS: Tuple[str, ...] = ()
    MSG_LIBRARIES: Tuple[Optional[str], ...] = ()
    # mprotect(2)'s no-access protection, for memory a case makes unreadable (EFAULT cases): Python's mmap module
    # has no PROT_NONE.
    PROT_NONE: Optional[int] = None

    # ---- processes: whose children the leak check sees -----------------------------------------------------------
    # One file per thread listing that thread's children ({tid} is the thread id).
    CHILDREN_FILE: Optional[str] = None
    # prctl option (Linux) and procctl command (FreeBSD) that adopt orphaned descendants.
    PR_SET_CHILD_SUBREAPER: Optional[int] = None
    PROC_REAP_ACQUIRE: Optional[int] = None
    # A directory with one entry per process, named by its pid and owned by its effective uid.
    PROC_ROOT: Optional[str] = None

    # ---- mounts: the filesystem type under test --------------------------------------------------------------------
    # Linux's per-process mount table, and the System V mount table (illumos); else mount(8) is read.
    MOUNTINFO: Optional[str] = None
    MNTTAB: Optional[str] = None
    # Where no mount listed contains the path (a chroot: the kernel lists only the mounts under the reader's root),
    # statfs(2)'s f_type names the filesystem: the format of f_type at the start of struct statfs, by
    # platform.machine() prefix, and the names of its magic numbers.
    # The syscall that takes fcntl's argument to the kernel unread, by userland machine (detect.arch()'s first word),
    # where the C library reads and converts it on the way.
    FCNTL_SYSCALL: Dict[str, int] = field(default_factory=dict)
    # The kernel's own machine name, which a personality does not change, and the userland machine a 64-bit
    # kernel's name stands for when the interpreter is a 32-bit program that runs without PER_LINUX32.
    KERNEL_MACHINE: Optional[str] = None
    COMPAT_MACHINES: Dict[str, str] = field(default_factory=dict)
    STATFS_TYPE_CODE: Dict[str, str] = field(default_factory=dict)
    STATFS_MAGIC: Dict[int, str] = field(default_factory=dict)

    # ---- record locks ----------------------------------------------------------------------------------------------
    # struct flock as a struct module format, and its fields in that order.
    FLOCK_FORMAT: Optional[str] = None
    FLOCK_FIELDS: Tuple[str, ...] = ()
    # Lock types and the classic commands, for a Python whose fcntl lacks them.
    F_RDLCK: Optional[int] = None
    F_WRLCK: Optional[int] = None
    F_UNLCK: Optional[int] = None
    F_GETLK: Optional[int] = None
    F_SETLK: Optional[int] = None
    F_SETLKW: Optional[int] = None
    # Open file description locks.
    F_OFD_GETLK: Optional[int] = None
    F_OFD_SETLK: Optional[int] = None
    F_OFD_SETLKW: Optional[int] = None
    # A table of every lock and every blocked waiter, so a case can see a waiter block.
    PROC_LOCKS: Optional[str] = None
    # Filesystem types (as the mount table names them) whose lock requests go to a server or a cluster's lock manager:
    # a waiter that meets a lock only that party knows sleeps there, and PROC_LOCKS does not list it.
    REMOTE_LOCK_FILESYSTEMS: Optional[frozenset] = None
    # Whether flock locks and fcntl locks of other owners conflict ("conflicting") or ignore each other
    # ("independent") on a local filesystem: the OS's own design, which the references leave open (flock(2)), and a
    # parameter of the lock model (explore/lockmodel.py).
    FLOCK_VS_FCNTL: Optional[str] = None

    # ---- credentials -----------------------------------------------------------------------------------------------
    # Linux: SO_PASSCRED on the receiver, SCM_CREDENTIALS carrying struct ucred; SO_PEERCRED at connect time.
    SO_PASSCRED: Optional[int] = None
    SCM_CREDENTIALS: Optional[int] = None
    UCRED_FORMAT: Optional[str] = None
    SO_PEERCRED: Optional[int] = None
    # Where a pidfd's pid is shown ({fd} is the descriptor).
    PIDFD_FDINFO: Optional[str] = None
    # Linux: the peer's supplementary groups at connect time (getsockopt), by platform.machine() prefix ("" for
    # every machine not listed).
    SO_PEERGROUPS_BY_MACHINE: Dict[str, int] = field(default_factory=dict)
    # Linux: a pidfd's process information by ioctl: PIDFD_GET_INFO's (type, number), struct pidfd_info as far as its
    # exit status (the mask first, the exit status last), and the mask bit that asks for and reports the exit status.
    PIDFD_GET_INFO: Tuple[int, ...] = ()
    PIDFD_INFO_FORMAT: Optional[str] = None
    PIDFD_INFO_EXIT: Optional[int] = None
    # How an ioctl request encodes its direction and argument size, by platform.machine() prefix ("" for every
    # machine not listed): (size bits, _IOC_READ, _IOC_WRITE, _IOC_NONE).
    IOC_ENCODING: Dict[str, Tuple[int, ...]] = field(default_factory=dict)
    # BSD: SCM_CREDS, which a sender attaches and the kernel fills in (struct cmsgcred, where there is one).
    SCM_CREDS: Optional[int] = None
    CMSGCRED_FORMAT: Optional[str] = None
    # BSD connect-time credentials: getsockopt(SOL_LOCAL, LOCAL_PEERCRED) gives struct xucred; macOS's peer pid.
    SOL_LOCAL: Optional[int] = None
    LOCAL_PEERCRED: Optional[int] = None
    XUCRED_FORMAT: Optional[str] = None
    LOCAL_PEERPID: Optional[int] = None
    # FreeBSD receiver-requested credentials: struct sockcred and sockcred2 before their groups.
    LOCAL_CREDS: Optional[int] = None
    LOCAL_CREDS_PERSISTENT: Optional[int] = None
    SCM_CREDS2: Optional[int] = None
    SOCKCRED_FORMAT: Optional[str] = None
    SOCKCRED2_FORMAT: Optional[str] = None

    # ---- duplication through any channel (pidfd_getfd) ------------------------------------------------------------
    # pidfd_getfd's syscall number by platform.machine() prefix ("" for every other machine), None for a machine
    # whose number the platform does not know.
    SYSCALL_PIDFD_GETFD: Dict[str, Optional[int]] = field(default_factory=dict)
    # A process's stat line ({pid}), with its start time; a process's descriptor by path ({pid}, {fd}).
    PROC_STAT: Optional[str] = None
    PROC_PID_FD: Optional[str] = None
    # Yama's ptrace restriction, and the prctl options that change who may duplicate from this process.
    YAMA_PTRACE_SCOPE: Optional[str] = None
    PR_SET_DUMPABLE: Optional[int] = None
    PR_SET_PTRACER: Optional[int] = None
    PR_SET_PTRACER_ANY: Optional[int] = None
    # POSIX message queues: the libraries to look in (None is the C library itself), whether mqd_t is a pointer,
    # and struct mq_attr.
    MQ_LIBRARIES: Tuple[Optional[str], ...] = ()
    MQD_IS_POINTER: Optional[bool] = None
    MQ_ATTR_FORMAT: Optional[str] = None

    # ---- STREAMS descriptor passing --------------------------------------------------------------------------------
    # ioctls, struct strbuf and struct strrecvfd, and getmsg(2)'s "more is left" return values.
    I_SENDFD: Optional[int] = None
    I_RECVFD: Optional[int] = None
    I_NREAD: Optional[int] = None
    STRBUF_FORMAT: Optional[str] = None
    STRRECVFD_FORMAT: Optional[str] = None
    MORECTL: Optional[int] = None
    MOREDATA: Optional[int] = None

    # ---- the C peers -----------------------------------------------------------------------------------------------
    # Extra linker arguments for conformance/native (the socket calls are in the C library unless said here).
    NATIVE_LDLIBS: Tuple[str, ...] = ()

    # ---- the fault layer (conformance.faults): a shared library loaded into the suite's processes ------------------
    # The compiler's arguments for a shared library, the libraries it links (dlsym), and the environment that makes
    # the dynamic linker load it first ({library}: its path). Empty: no way to preload a library is known here.
    SHARED_LIBRARY_FLAGS: Tuple[str, ...] = ()
    SHARED_LIBRARY_LDLIBS: Tuple[str, ...] = ()
    PRELOAD_ENVIRONMENT: Dict[str, str] = field(default_factory=dict)
