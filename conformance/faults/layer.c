/*
 * The fault layer: loaded into the suite's processes with LD_PRELOAD (DYLD_INSERT_LIBRARIES on macOS), it wraps
 * the C library calls the suite makes and, when $CONFORMANCE_FAULT names a fault, makes the platform lie in that
 * one way. Without $CONFORMANCE_FAULT every call goes straight through: a run with the layer loaded and no fault
 * is the control that every fault's run is compared with.
 *
 * The catalogue (conformance/faults/catalogue.py) says, for each fault, what it breaks and where that behaviour
 * is specified. A name the layer does not know ends the process at load time with exit status 2: a misspelt fault
 * must never run as "no fault" and look survived.
 *
 * Values the headers may lack come from the suite's platform data, as -D options: CONFORMANCE_SO_PASSRIGHTS,
 * CONFORMANCE_SYS_PIDFD_GETFD.
 */
#define _GNU_SOURCE
#if defined(__sun)
/* illumos: struct msghdr has msg_control and msg_flags only under _XPG4_2, which also renames sendmsg and recvmsg
 * to the __xnet_ functions of libsocket (sys/socket.h); those are what an interpreter built that way calls. */
#define _XPG4_2
#define __EXTENSIONS__
#define SENDMSG_NAME "__xnet_sendmsg"
#define RECVMSG_NAME "__xnet_recvmsg"
#else
#define SENDMSG_NAME "sendmsg"
#define RECVMSG_NAME "recvmsg"
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

enum fault {
    NONE,
    LAYER_CHECK,
    RIGHTS_DROP_LAST,
    RIGHTS_LEAK_ORIGINAL,
    RIGHTS_REORDER,
    RIGHTS_REPLACED,
    CTRUNC_HIDDEN,
    CTRUNC_INVENTED,
    CLOEXEC_IGNORED,
    CLOEXEC_FORCED,
    PEEK_WITHOUT_RIGHTS,
    RIGHTS_LIMIT_LOWERED,
    RIGHTS_LIMIT_RAISED,
    EMPTY_PAYLOAD_DROPPED,
    SEQPACKET_IS_STREAM,
    PASSRIGHTS_OFF_IGNORED,
    CREDS_WRONG_PID,
    CREDS_WRONG_UID,
    CREDS_WRONG_GID,
    CREDS_FORGERY_ACCEPTED,
    PEERCRED_WRONG_PROCESS,
    PASSCRED_IGNORED,
    ACCEPT_DROPS_PASSCRED,
    APUE_STATUS_ALTERED,
    OFD_DEGRADED,
    GETLK_WRONG_TYPE,
    GETLK_WRONG_PID,
    GETLK_RANGE_CLIPPED,
    CONFLICTS_UNREPORTED,
    LOCK_EBADF_AS_EINVAL,
    CLASSIC_SURVIVES_CLOSE,
    OFD_RELEASED_BY_CLOSE,
    FLOCK_RELEASED_BY_CLOSE,
    FLOCK_NEVER_CONFLICTS,
    FLOCK_CONFLICTS_WITH_FCNTL,
    FLOCK_EWOULDBLOCK_AS_EACCES,
    WAITER_NEVER_WOKEN,
    DUP_NEW_DESCRIPTION,
    PIDFD_GETFD_NO_CLOEXEC,
    PIDFD_GETFD_NEW_DESCRIPTION,
};

static const struct {
    const char *name;
    enum fault id;
} NAMES[] = {
    {"layer-check", LAYER_CHECK},
    {"rights-drop-last", RIGHTS_DROP_LAST},
    {"rights-leak-original", RIGHTS_LEAK_ORIGINAL},
    {"rights-reorder", RIGHTS_REORDER},
    {"rights-replaced", RIGHTS_REPLACED},
    {"ctrunc-hidden", CTRUNC_HIDDEN},
    {"ctrunc-invented", CTRUNC_INVENTED},
    {"cloexec-ignored", CLOEXEC_IGNORED},
    {"cloexec-forced", CLOEXEC_FORCED},
    {"peek-without-rights", PEEK_WITHOUT_RIGHTS},
    {"rights-limit-lowered", RIGHTS_LIMIT_LOWERED},
    {"rights-limit-raised", RIGHTS_LIMIT_RAISED},
    {"empty-payload-dropped", EMPTY_PAYLOAD_DROPPED},
    {"seqpacket-is-stream", SEQPACKET_IS_STREAM},
    {"passrights-off-ignored", PASSRIGHTS_OFF_IGNORED},
    {"creds-wrong-pid", CREDS_WRONG_PID},
    {"creds-wrong-uid", CREDS_WRONG_UID},
    {"creds-wrong-gid", CREDS_WRONG_GID},
    {"creds-forgery-accepted", CREDS_FORGERY_ACCEPTED},
    {"peercred-wrong-process", PEERCRED_WRONG_PROCESS},
    {"passcred-ignored", PASSCRED_IGNORED},
    {"accept-drops-passcred", ACCEPT_DROPS_PASSCRED},
    {"apue-status-altered", APUE_STATUS_ALTERED},
    {"ofd-degraded", OFD_DEGRADED},
    {"getlk-wrong-type", GETLK_WRONG_TYPE},
    {"getlk-wrong-pid", GETLK_WRONG_PID},
    {"getlk-range-clipped", GETLK_RANGE_CLIPPED},
    {"conflicts-unreported", CONFLICTS_UNREPORTED},
    {"lock-ebadf-as-einval", LOCK_EBADF_AS_EINVAL},
    {"classic-survives-close", CLASSIC_SURVIVES_CLOSE},
    {"ofd-released-by-close", OFD_RELEASED_BY_CLOSE},
    {"flock-released-by-close", FLOCK_RELEASED_BY_CLOSE},
    {"flock-never-conflicts", FLOCK_NEVER_CONFLICTS},
    {"flock-conflicts-with-fcntl", FLOCK_CONFLICTS_WITH_FCNTL},
    {"flock-ewouldblock-as-eacces", FLOCK_EWOULDBLOCK_AS_EACCES},
    {"waiter-never-woken", WAITER_NEVER_WOKEN},
    {"dup-new-description", DUP_NEW_DESCRIPTION},
    {"pidfd-getfd-no-cloexec", PIDFD_GETFD_NO_CLOEXEC},
    {"pidfd-getfd-new-description", PIDFD_GETFD_NEW_DESCRIPTION},
};

static enum fault active = NONE;

/* The names, one per line, for the catalogue's self-test: every fault it lists must be one the layer knows. */
const char *conformance_fault_names(void) {
    static char all[2048];
    if (!all[0]) {
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
            strncat(all, NAMES[i].name, sizeof all - strlen(all) - 2);
            strcat(all, "\n");
        }
    }
    return all;
}

__attribute__((constructor)) static void choose(void) {
    const char *name = getenv("CONFORMANCE_FAULT");
    if (name == NULL || name[0] == '\0')
        return;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        if (strcmp(name, NAMES[i].name) == 0) {
            active = NAMES[i].id;
            return;
        }
    }
    fprintf(stderr, "conformance fault layer: unknown fault %s\n", name);
    _exit(2);
}

/* The next definition of a symbol, looked up once. */
static void *next(void **slot, const char *name) {
    if (*slot == NULL)
        *slot = dlsym(RTLD_NEXT, name);
    return *slot;
}
#define REAL(type, name) static void *name##_slot; type name##_real = (type)next(&name##_slot, #name)
#define REAL_NAMED(type, name, symbol) static void *name##_slot; type name##_real = (type)next(&name##_slot, symbol)

typedef int (*close_t)(int);
typedef int (*fcntl_t)(int, int, ...);
typedef int (*flock_t)(int, int);
typedef ssize_t (*sendmsg_t)(int, const struct msghdr *, int);
typedef ssize_t (*recvmsg_t)(int, struct msghdr *, int);
typedef ssize_t (*recv_t)(int, void *, size_t, int);
typedef ssize_t (*recvfrom_t)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef int (*socket_t)(int, int, int);
typedef int (*socketpair_t)(int, int, int, int[2]);
typedef int (*accept_t)(int, struct sockaddr *, socklen_t *);
typedef int (*getsockopt_t)(int, int, int, void *, socklen_t *);
typedef int (*setsockopt_t)(int, int, int, const void *, socklen_t);
typedef int (*dup_t)(int);
typedef int (*dup2_t)(int, int);

static int real_close(int fd) {
    REAL(close_t, close);
    return close_real(fd);
}

static fcntl_t plain_fcntl(void) {
    static void *slot;
    return (fcntl_t)next(&slot, "fcntl");
}

static int real_flock(int fd, int op) {
    REAL(flock_t, flock);
    return flock_real(fd, op);
}

/* ---- byte-range locks ------------------------------------------------------------------------------------------ */

/* A lock request or answer, whatever struct flock the caller used. */
struct range {
    short type, whence;
    long long start, len;
    long pid;
};

/* Which struct the argument is: on a 32-bit glibc, fcntl64 and the *64 commands take struct flock64; everywhere
 * else the two are one struct. */
#if defined(__GLIBC__) && !defined(__LP64__)
#define WIDE(cmd, large) ((large) || (cmd) == F_GETLK64 || (cmd) == F_SETLK64 || (cmd) == F_SETLKW64)
#else
#define WIDE(cmd, large) 0
#endif

static void get_range(void *arg, int wide, struct range *r) {
#if defined(__GLIBC__) && !defined(__LP64__)
    if (wide) {
        struct flock64 *f = arg;
        *r = (struct range){f->l_type, f->l_whence, f->l_start, f->l_len, f->l_pid};
        return;
    }
#endif
    (void)wide;
    struct flock *f = arg;
    *r = (struct range){f->l_type, f->l_whence, f->l_start, f->l_len, f->l_pid};
}

static void put_range(void *arg, int wide, const struct range *r) {
#if defined(__GLIBC__) && !defined(__LP64__)
    if (wide) {
        struct flock64 *f = arg;
        f->l_type = r->type, f->l_whence = r->whence, f->l_start = r->start, f->l_len = r->len, f->l_pid = r->pid;
        return;
    }
#endif
    (void)wide;
    struct flock *f = arg;
    f->l_type = r->type, f->l_whence = r->whence, f->l_start = r->start, f->l_len = r->len, f->l_pid = r->pid;
}

static int is_ofd(int cmd) {
#ifdef F_OFD_GETLK
    return cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
#else
    (void)cmd;
    return 0;
#endif
}

static int is_classic(int cmd) {
    if (cmd == F_GETLK || cmd == F_SETLK || cmd == F_SETLKW)
        return 1;
#if defined(__GLIBC__) && !defined(__LP64__)
    return cmd == F_GETLK64 || cmd == F_SETLK64 || cmd == F_SETLKW64;
#else
    return 0;
#endif
}

static int is_getlk(int cmd) {
#ifdef F_OFD_GETLK
    if (cmd == F_OFD_GETLK)
        return 1;
#endif
#if defined(__GLIBC__) && !defined(__LP64__)
    if (cmd == F_GETLK64)
        return 1;
#endif
    return cmd == F_GETLK;
}

static int is_setlkw(int cmd) {
#ifdef F_OFD_SETLKW
    if (cmd == F_OFD_SETLKW)
        return 1;
#endif
#if defined(__GLIBC__) && !defined(__LP64__)
    if (cmd == F_SETLKW64)
        return 1;
#endif
    return cmd == F_SETLKW;
}

static int without_wait(int cmd) {
    (void)cmd;  // with no OFD and no *64 commands, every waiting command becomes F_SETLK
#ifdef F_OFD_SETLKW
    if (cmd == F_OFD_SETLKW)
        return F_OFD_SETLK;
#endif
#if defined(__GLIBC__) && !defined(__LP64__)
    if (cmd == F_SETLKW64)
        return F_SETLK64;
#endif
    return F_SETLK;
}

static int classic_of(int cmd, int wide) {
    (void)wide;
#ifdef F_OFD_GETLK
#if defined(__GLIBC__) && !defined(__LP64__)
    if (wide)
        return cmd == F_OFD_GETLK ? F_GETLK64 : cmd == F_OFD_SETLK ? F_SETLK64 : F_SETLKW64;
#endif
    if (cmd == F_OFD_GETLK)
        return F_GETLK;
    if (cmd == F_OFD_SETLK)
        return F_SETLK;
    if (cmd == F_OFD_SETLKW)
        return F_SETLKW;
#endif
    return cmd;
}

/* A waiter that is never woken: the request is tried without waiting; if it conflicts, the caller sleeps until a
 * signal comes, or at most a minute, and is told EINTR. A minute is beyond every deadline of the suite, so no case
 * sees the request granted in time; it is bounded so that a thread asleep here, which a timeout signal delivered to
 * another thread never wakes, cannot keep a run alive for good (Python retries after EINTR: the next try may be
 * granted). */
#define NEVER_WOKEN_SECONDS 60
static int sleep_for_good(void) {
    sleep(NEVER_WOKEN_SECONDS);
    errno = EINTR;
    return -1;
}

/* classic-survives-close: the classic locks this process took with SEEK_SET ranges, to take them again through
 * another descriptor of the file after a close has released them. */
#define TRACKED 64
static struct tracked {
    pid_t pid;
    dev_t dev;
    ino_t ino;
    struct range range;
} tracked[TRACKED];

static void track(int fd, int cmd, void *arg, int wide) {
    struct stat st;
    struct range r;
    if (!is_classic(cmd) || is_getlk(cmd) || fstat(fd, &st) != 0)
        return;
    get_range(arg, wide, &r);
    for (int i = 0; i < TRACKED; i++) {
        struct tracked *t = &tracked[i];
        if (t->pid == getpid() && t->dev == st.st_dev && t->ino == st.st_ino && r.type == F_UNLCK)
            t->pid = 0;  // an unlock forgets what it touched (coarse, and only ever in the fault's favour)
    }
    if (r.type == F_UNLCK || r.whence != SEEK_SET)
        return;
    for (int i = 0; i < TRACKED; i++) {
        if (tracked[i].pid == 0 || kill(tracked[i].pid, 0) != 0) {
            tracked[i] = (struct tracked){getpid(), st.st_dev, st.st_ino, r};
            return;
        }
    }
}

static void take_again(dev_t dev, ino_t ino) {
    struct stat st;
    int other = -1;
    for (int fd = 0; fd < 1024 && other < 0; fd++)
        if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
            other = fd;
    for (int i = 0; i < TRACKED; i++) {
        struct tracked *t = &tracked[i];
        if (t->pid != getpid() || t->dev != dev || t->ino != ino)
            continue;
        if (other < 0) {
            t->pid = 0;
            continue;
        }
        struct flock f;
        memset(&f, 0, sizeof f);
        f.l_type = t->range.type, f.l_whence = SEEK_SET, f.l_start = t->range.start, f.l_len = t->range.len;
        plain_fcntl()(other, F_SETLK, &f);
    }
}

/* dup-new-description: a new open file description of the same file, where a duplicate was asked for. */
static int reopened(int fd) {
#ifdef __linux__
    char path[64];
    struct stat st;
    int flags = plain_fcntl()(fd, F_GETFL);
    if (flags < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, (flags & (O_ACCMODE | O_APPEND | O_NONBLOCK)) | O_CLOEXEC);
#else
    (void)fd;
    return -1;
#endif
}

static int do_fcntl(fcntl_t real, int fd, int cmd, void *arg, int large) {
    int wide = WIDE(cmd, large);
    (void)large;  // only a 32-bit glibc has two structs
    struct range query, answer;
    int r;
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    switch (active) {
    case OFD_DEGRADED:
        if (is_ofd(cmd))
            cmd = classic_of(cmd, wide);
        break;
    case LOCK_EBADF_AS_EINVAL:
        if (is_classic(cmd) || is_ofd(cmd)) {
            r = real(fd, cmd, arg);
            if (r < 0 && errno == EBADF)
                errno = EINVAL;
            return r;
        }
        break;
    case WAITER_NEVER_WOKEN:
        if (is_setlkw(cmd)) {
            r = real(fd, without_wait(cmd), arg);
            if (r == 0 || (errno != EAGAIN && errno != EACCES))
                return r;
            return sleep_for_good();
        }
        break;
    case GETLK_WRONG_TYPE:
    case GETLK_WRONG_PID:
    case GETLK_RANGE_CLIPPED:
    case CONFLICTS_UNREPORTED:
        if (!is_getlk(cmd))
            break;
        get_range(arg, wide, &query);
        r = real(fd, cmd, arg);
        if (r != 0)
            return r;
        get_range(arg, wide, &answer);
        if (answer.type == F_UNLCK)
            return r;
        if (active == GETLK_WRONG_TYPE)
            answer.type = answer.type == F_WRLCK ? F_RDLCK : F_WRLCK;
        else if (active == GETLK_WRONG_PID && answer.pid > 0)
            answer.pid += 1;
        else if (active == CONFLICTS_UNREPORTED)
            answer = query, answer.type = F_UNLCK;
        else if (active == GETLK_RANGE_CLIPPED && query.whence == SEEK_SET && answer.whence == SEEK_SET) {
            // What a table that keeps each request's piece, never merged, would name: the part the query meets.
            long long q_end = query.len == 0 ? LLONG_MAX : query.start + query.len;
            long long a_end = answer.len == 0 ? LLONG_MAX : answer.start + answer.len;
            long long start = answer.start > query.start ? answer.start : query.start;
            long long end = a_end < q_end ? a_end : q_end;
            answer.start = start, answer.len = end == LLONG_MAX ? 0 : end - start;
        }
        put_range(arg, wide, &answer);
        return r;
    case CLASSIC_SURVIVES_CLOSE:
        r = real(fd, cmd, arg);
        if (r == 0)
            track(fd, cmd, arg, wide);
        return r;
    case DUP_NEW_DESCRIPTION:
        if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
            int fresh = reopened(fd);
            if (fresh < 0)
                break;
            r = real(fresh, cmd, arg);
            int saved = errno;
            real_close(fresh);
            errno = saved;
            return r;
        }
        break;
    default:
        break;
    }
    return real(fd, cmd, arg);
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return do_fcntl(plain_fcntl(), fd, cmd, arg, 0);
}

#ifdef __GLIBC__
int fcntl64(int fd, int cmd, ...) {
    static void *slot;
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return do_fcntl((fcntl_t)next(&slot, "fcntl64"), fd, cmd, arg, 1);
}
#endif

int flock(int fd, int op) {
    int wants = op & (LOCK_SH | LOCK_EX);
    int r;
    switch (active) {
    case FLOCK_NEVER_CONFLICTS:
        if (!wants)
            break;
        r = real_flock(fd, op | LOCK_NB);
        if (r < 0 && errno == EWOULDBLOCK)
            return 0;
        return r;
    case FLOCK_CONFLICTS_WITH_FCNTL:
        if (wants) {
            struct flock f;
            memset(&f, 0, sizeof f);
            f.l_type = (op & LOCK_EX) ? F_WRLCK : F_RDLCK, f.l_whence = SEEK_SET;
            if (plain_fcntl()(fd, F_GETLK, &f) == 0 && f.l_type != F_UNLCK) {
                errno = EWOULDBLOCK;
                return -1;
            }
        }
        break;
    case FLOCK_EWOULDBLOCK_AS_EACCES:
        r = real_flock(fd, op);
        if (r < 0 && errno == EWOULDBLOCK)
            errno = EACCES;
        return r;
    case WAITER_NEVER_WOKEN:
        if (wants && !(op & LOCK_NB)) {
            r = real_flock(fd, op | LOCK_NB);
            if (r == 0 || errno != EWOULDBLOCK)
                return r;
            return sleep_for_good();
        }
        break;
    default:
        break;
    }
    return real_flock(fd, op);
}

int close(int fd) {
    if (active == LAYER_CHECK && fd == 987654) {
        errno = EDOM;  // what `conformance mutants` asks to see that the layer is in the interpreter's calls
        return -1;
    }
    if (active == OFD_RELEASED_BY_CLOSE || active == FLOCK_RELEASED_BY_CLOSE || active == CLASSIC_SURVIVES_CLOSE) {
        struct stat st;
        int saved = errno;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            if (active == FLOCK_RELEASED_BY_CLOSE) {
                real_flock(fd, LOCK_UN);
            } else if (active == OFD_RELEASED_BY_CLOSE) {
#ifdef F_OFD_SETLK
                struct flock f;
                memset(&f, 0, sizeof f);
                f.l_type = F_UNLCK, f.l_whence = SEEK_SET;
                plain_fcntl()(fd, F_OFD_SETLK, &f);
#endif
            } else {
                int r = real_close(fd);
                int after = errno;
                take_again(st.st_dev, st.st_ino);
                errno = r == 0 ? saved : after;
                return r;
            }
        }
        errno = saved;
    }
    return real_close(fd);
}

static int dup_fault(int fd) {
    return active == DUP_NEW_DESCRIPTION ? reopened(fd) : -1;
}

int dup(int fd) {
    REAL(dup_t, dup);
    int fresh = dup_fault(fd);
    if (fresh < 0)
        return dup_real(fd);
    // dup() makes a descriptor without FD_CLOEXEC
    plain_fcntl()(fresh, F_SETFD, 0);
    return fresh;
}

int dup2(int fd, int to) {
    REAL(dup2_t, dup2);
    int fresh = fd == to ? -1 : dup_fault(fd);
    if (fresh < 0)
        return dup2_real(fd, to);
    int r = dup2_real(fresh, to);
    real_close(fresh);
    return r;
}

/* ---- sockets --------------------------------------------------------------------------------------------------- */

static int base_type(int type) {
    int flags = 0;
#ifdef SOCK_CLOEXEC
    flags |= SOCK_CLOEXEC;
#endif
#ifdef SOCK_NONBLOCK
    flags |= SOCK_NONBLOCK;
#endif
    return type & ~flags;
}

static int socket_type(int domain, int type) {
    if (active == SEQPACKET_IS_STREAM && domain == AF_UNIX && base_type(type) == SOCK_SEQPACKET)
        return (type & ~SOCK_SEQPACKET) | SOCK_STREAM;
    return type;
}

int socket(int domain, int type, int protocol) {
    REAL(socket_t, socket);
    return socket_real(domain, socket_type(domain, type), protocol);
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
    REAL(socketpair_t, socketpair);
    return socketpair_real(domain, socket_type(domain, type), protocol, sv);
}

static int after_accept(int fd) {
#ifdef SO_PASSCRED
    if (fd >= 0 && active == ACCEPT_DROPS_PASSCRED) {
        REAL(setsockopt_t, setsockopt);
        int off = 0;
        setsockopt_real(fd, SOL_SOCKET, SO_PASSCRED, &off, sizeof off);
    }
#endif
    return fd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    REAL(accept_t, accept);
    return after_accept(accept_real(fd, addr, len));
}

#ifdef __linux__
typedef int (*accept4_t)(int, struct sockaddr *, socklen_t *, int);
int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    REAL(accept4_t, accept4);
    return after_accept(accept4_real(fd, addr, len, flags));
}
#endif

int getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
    REAL(getsockopt_t, getsockopt);
    int r = getsockopt_real(fd, level, name, value, len);
#ifdef SO_PEERCRED
    if (r == 0 && active == PEERCRED_WRONG_PROCESS && level == SOL_SOCKET && name == SO_PEERCRED &&
        *len >= sizeof(struct ucred))
        ((struct ucred *)value)->pid = getpid();
#endif
#ifdef LOCAL_PEERPID
    if (r == 0 && active == PEERCRED_WRONG_PROCESS && name == LOCAL_PEERPID && *len >= sizeof(pid_t))
        *(pid_t *)value = getpid();
#endif
    return r;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    REAL(setsockopt_t, setsockopt);
    int off = len >= sizeof(int) && *(const int *)value == 0;
#ifdef SO_PASSCRED
    if (active == PASSCRED_IGNORED && level == SOL_SOCKET && name == SO_PASSCRED)
        return 0;
#endif
#ifdef CONFORMANCE_SO_PASSRIGHTS
    if (active == PASSRIGHTS_OFF_IGNORED && level == SOL_SOCKET && name == CONFORMANCE_SO_PASSRIGHTS && off)
        return 0;
#endif
    (void)off;
    return setsockopt_real(fd, level, name, value, len);
}

static int rights_count(const struct msghdr *msg) {
    int n = 0;
    if (msg->msg_control == NULL)
        return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(0))
            n += (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    return n;
}

static size_t payload(const struct msghdr *msg) {
    size_t n = 0;
    for (size_t i = 0; i < (size_t)msg->msg_iovlen; i++)
        n += msg->msg_iov[i].iov_len;
    return n;
}

#define LOWERED_LIMIT 128  // rights-limit-lowered: far below every platform's limit, above what ordinary cases send

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    REAL_NAMED(sendmsg_t, sendmsg, SENDMSG_NAME);
    int n;
    ssize_t r;
    switch (active) {
    case RIGHTS_LIMIT_LOWERED:
        if (rights_count(msg) > LOWERED_LIMIT) {
            errno = EINVAL;
            return -1;
        }
        break;
    case RIGHTS_LIMIT_RAISED:
        r = sendmsg_real(fd, msg, flags);
        n = rights_count(msg);
        if (r >= 0 || errno != EINVAL || n <= LOWERED_LIMIT)
            return r;
        // Told yes where the platform says EINVAL: the descriptors over the limit are silently left behind.
        {
            struct msghdr copy = *msg;
            char *control = malloc(msg->msg_controllen);
            if (control == NULL)
                return r;
            memcpy(control, msg->msg_control, msg->msg_controllen);
            copy.msg_control = control;
            struct cmsghdr *c = CMSG_FIRSTHDR(&copy);
            while (r < 0 && errno == EINVAL && c != NULL && c->cmsg_type == SCM_RIGHTS && c->cmsg_len > CMSG_LEN(sizeof(int))) {
                c->cmsg_len -= sizeof(int);
                copy.msg_controllen = CMSG_SPACE(c->cmsg_len - CMSG_LEN(0));
                r = sendmsg_real(fd, &copy, flags);
            }
            free(control);
        }
        return r;
    case EMPTY_PAYLOAD_DROPPED:
        if (payload(msg) == 0 && msg->msg_controllen > 0 && rights_count(msg) > 0)
            return 0;
        break;
    case CREDS_FORGERY_ACCEPTED:
#ifdef SCM_CREDENTIALS
        r = sendmsg_real(fd, msg, flags);
        if (r >= 0 || (errno != EPERM && errno != ESRCH) || msg->msg_control == NULL)
            return r;
        {
            struct msghdr copy = *msg;
            char *control = malloc(msg->msg_controllen);
            int stated = 0;
            if (control == NULL)
                return r;
            memcpy(control, msg->msg_control, msg->msg_controllen);
            copy.msg_control = control;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&copy); c; c = CMSG_NXTHDR(&copy, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                    struct ucred *u = (struct ucred *)CMSG_DATA(c);
                    u->pid = getpid(), u->uid = getuid(), u->gid = getgid();
                    stated = 1;
                }
            }
            if (stated)
                r = sendmsg_real(fd, &copy, flags);
            int saved = errno;
            free(control);
            errno = saved;
        }
        return r;
#else
        break;
#endif
    default:
        break;
    }
    return sendmsg_real(fd, msg, flags);
}

static int is_stream(int fd) {
    int type = 0;
    socklen_t len = sizeof type;
    REAL(getsockopt_t, getsockopt);
    return getsockopt_real(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* apue-status-altered: a received record that ends as an APUE status does (a NUL, then a nonzero status byte)
 * arrives with another status. */
static void alter_status(int fd, unsigned char *data, ssize_t n) {
    if (n >= 2 && data[n - 2] == 0 && data[n - 1] != 0 && is_stream(fd))
        data[n - 1] = data[n - 1] == 255 ? 1 : data[n - 1] + 1;
}

static void set_cloexec(int fd) {
    int flags = plain_fcntl()(fd, F_GETFD);
    if (flags >= 0)
        plain_fcntl()(fd, F_SETFD, flags | FD_CLOEXEC);
}

/* What one received SCM_RIGHTS message becomes under a rights fault; `last`: it ends the control data. */
static void alter_rights(struct msghdr *msg, struct cmsghdr *c, int last) {
    int *fds = (int *)CMSG_DATA(c);
    int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    if (n <= 0)
        return;
    switch (active) {
    case RIGHTS_DROP_LAST:
        if (!last)
            return;
        real_close(fds[n - 1]);
        if (n == 1)
            msg->msg_controllen = (socklen_t)((char *)c - (char *)msg->msg_control);
        else
            c->cmsg_len = CMSG_LEN((n - 1) * sizeof(int)), msg->msg_controllen = (socklen_t)((char *)c - (char *)msg->msg_control) + CMSG_SPACE((n - 1) * sizeof(int));
        return;
    case RIGHTS_LEAK_ORIGINAL:
        for (int i = 0; i < n; i++) {
            int copy = plain_fcntl()(fds[i], F_DUPFD_CLOEXEC, 0);
            if (copy >= 0) {
                if (!(plain_fcntl()(fds[i], F_GETFD) & FD_CLOEXEC))
                    plain_fcntl()(copy, F_SETFD, 0);
                fds[i] = copy;  // the original stays open in this process, and nothing refers to it
            }
        }
        return;
    case RIGHTS_REORDER:
        for (int i = 0; i < n / 2; i++) {
            int t = fds[i];
            fds[i] = fds[n - 1 - i], fds[n - 1 - i] = t;
        }
        return;
    case RIGHTS_REPLACED:
        for (int i = 0; i < n; i++) {
            int flags = plain_fcntl()(fds[i], F_GETFD);
            int null = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (null < 0)
                continue;
            REAL(dup2_t, dup2);
            dup2_real(null, fds[i]);
            real_close(null);
            plain_fcntl()(fds[i], F_SETFD, flags < 0 ? 0 : flags);
        }
        return;
    case CLOEXEC_FORCED:
        for (int i = 0; i < n; i++)
            set_cloexec(fds[i]);
        return;
    default:
        return;
    }
}

static void alter_credentials(struct cmsghdr *c) {
#ifdef SCM_CREDENTIALS
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
        struct ucred *u = (struct ucred *)CMSG_DATA(c);
        if (active == CREDS_WRONG_PID)
            u->pid = getpid();
        else if (active == CREDS_WRONG_UID)
            u->uid += 1;
        else if (active == CREDS_WRONG_GID)
            u->gid += 1;
    }
#endif
#if defined(SCM_CREDS) && defined(__FreeBSD__)  /* macOS names SCM_CREDS but does not define struct cmsgcred */
    if (c->cmsg_type == SCM_CREDS && c->cmsg_len >= CMSG_LEN(sizeof(struct cmsgcred))) {
        struct cmsgcred *u = (struct cmsgcred *)CMSG_DATA(c);
        if (active == CREDS_WRONG_PID)
            u->cmcred_pid = getpid();
        else if (active == CREDS_WRONG_UID)
            u->cmcred_uid += 1, u->cmcred_euid += 1;
        else if (active == CREDS_WRONG_GID)
            u->cmcred_gid += 1;
    }
#endif
    (void)c;
}

static void close_rights(struct msghdr *msg) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int *fds = (int *)CMSG_DATA(c);
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
            real_close(fds[i]);
    }
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    REAL_NAMED(recvmsg_t, recvmsg, RECVMSG_NAME);
#ifdef MSG_CMSG_CLOEXEC
    if (active == CLOEXEC_IGNORED)
        flags &= ~MSG_CMSG_CLOEXEC;
#endif
    ssize_t r = recvmsg_real(fd, msg, flags);
    if (r < 0 || active == NONE)
        return r;
    int saved = errno;
    if (active == CTRUNC_HIDDEN)
        msg->msg_flags &= ~MSG_CTRUNC;
    if (active == APUE_STATUS_ALTERED && msg->msg_iovlen >= 1 && (size_t)r <= msg->msg_iov[0].iov_len)
        alter_status(fd, msg->msg_iov[0].iov_base, r);
    if (msg->msg_control != NULL && msg->msg_controllen >= sizeof(struct cmsghdr)) {
        if (active == PEEK_WITHOUT_RIGHTS && (flags & MSG_PEEK) && rights_count(msg) > 0) {
            close_rights(msg);
            msg->msg_controllen = 0;
        } else if (active == CTRUNC_INVENTED && !(msg->msg_flags & MSG_CTRUNC) && rights_count(msg) > 0) {
            msg->msg_flags |= MSG_CTRUNC;
        } else {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                    continue;
                if (c->cmsg_type == SCM_RIGHTS)
                    alter_rights(msg, c, CMSG_NXTHDR(msg, c) == NULL);
                else
                    alter_credentials(c);
            }
        }
    }
    errno = saved;
    return r;
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    REAL(recv_t, recv);
    ssize_t r = recv_real(fd, buf, len, flags);
    if (r > 0 && active == APUE_STATUS_ALTERED && (size_t)r <= len) {
        int saved = errno;
        alter_status(fd, buf, r);
        errno = saved;
    }
    return r;
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen) {
    REAL(recvfrom_t, recvfrom);
    ssize_t r = recvfrom_real(fd, buf, len, flags, from, fromlen);
    if (r > 0 && active == APUE_STATUS_ALTERED && (size_t)r <= len) {
        int saved = errno;
        alter_status(fd, buf, r);
        errno = saved;
    }
    return r;
}

/* ---- pidfd_getfd, which the suite calls through syscall(2) ---------------------------------------------------- */

#if defined(__linux__) && defined(CONFORMANCE_SYS_PIDFD_GETFD)
typedef long (*syscall_t)(long, ...);
long syscall(long number, ...) {
    static void *slot;
    syscall_t real = (syscall_t)next(&slot, "syscall");
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    long r = real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (r < 0 || number != CONFORMANCE_SYS_PIDFD_GETFD)
        return r;
    int saved = errno;
    if (active == PIDFD_GETFD_NO_CLOEXEC) {
        plain_fcntl()((int)r, F_SETFD, 0);
    } else if (active == PIDFD_GETFD_NEW_DESCRIPTION) {
        int fresh = reopened((int)r);
        if (fresh >= 0) {
            REAL(dup2_t, dup2);
            dup2_real(fresh, (int)r);
            real_close(fresh);
            set_cloexec((int)r);
        }
    }
    errno = saved;
    return r;
}
#endif
