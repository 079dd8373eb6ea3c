/*
 * apue_fd: a native peer for the send_fd / send_err / recv_fd / recv_ufd descriptor-passing
 * protocol described in APUE ("Advanced Programming in the UNIX Environment"), chapter 17.
 *
 * Written from the protocol description for the conformance suite; it lets the Python cases
 * check that a C implementation and the Python one agree byte for byte.
 *
 * Wire format: optional error text, then a NUL byte, then one status byte.
 *   status 0   -> exactly one descriptor travels in an SCM_RIGHTS control message
 *   status > 0 -> no descriptor; the receiver's result is -status
 *
 * Deliberate differences from the book's receiver:
 *   - when the NUL is the last byte of a read on a stream socket, one more 1-byte read fetches
 *     the status (a stream may split "text NUL status" anywhere);
 *   - bytes after the status byte are a format error instead of being ignored;
 *   - truncated control data or a truncated record is an error, and no descriptor leaks.
 *
 * Command line (the Python tests rely on it):
 *   apue_fd send_fd  SOCK FD [--creds]
 *   apue_fd send_err SOCK CODE HEXTEXT
 *   apue_fd recv_fd  SOCK [BUFSIZE]
 *   apue_fd recv_ufd SOCK [BUFSIZE]
 * SOCK is an inherited descriptor number. Exit status: 0 ok, 1 system call failed,
 * 2 usage, 3 protocol error.
 */

/* glibc hides struct ucred and SCM_CREDENTIALS without these; BSDs and macOS ignore them. */
#define _GNU_SOURCE 1
#define _DEFAULT_SOURCE 1
#if defined(__sun)
/*
 * illumos: struct msghdr has msg_control/msg_controllen/msg_flags and the CMSG_* macros exist only with
 * _XPG4_2 (usr/src/uts/common/sys/socket.h); otherwise it is the old msg_accrights layout. _XOPEN_SOURCE 600
 * gives _XPG4_2 and is what -std=c99 requires (sys/feature_tests.h); __EXTENSIONS__ keeps the rest visible.
 * The X/Open sendmsg/recvmsg are in libsocket: the build links -lsocket -lnsl there (platforms/illumos.py).
 */
#define _XOPEN_SOURCE 600
#define __EXTENSIONS__ 1
#endif

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#if defined(__APPLE__)
#include <sys/ucred.h> /* struct xucred, for LOCAL_PEERCRED */
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Which per-message (or per-connection) credential mechanism this system offers. */
#if defined(SCM_CREDENTIALS)
#define CRED_LINUX 1
#define CRED_NAME "SCM_CREDENTIALS"
#define CRED_SPACE CMSG_SPACE(sizeof(struct ucred))
#elif defined(SCM_CREDS) && defined(CMGROUP_MAX)
/* struct cmsgcred exists (FreeBSD, DragonFly); macOS defines SCM_CREDS but not this struct. */
#define CRED_CMSGCRED 1
#define CRED_NAME "SCM_CREDS"
#define CRED_SPACE CMSG_SPACE(sizeof(struct cmsgcred))
#elif defined(LOCAL_PEERCRED) && defined(XUCRED_VERSION)
/* macOS: no credentials per message, only the peer's credentials per connection. */
#define CRED_PEERCRED 1
#define CRED_NAME "LOCAL_PEERCRED"
#define CRED_SPACE 0
#ifndef SOL_LOCAL
#define SOL_LOCAL 0
#endif
#else
#define CRED_NAME "none"
#define CRED_SPACE 0
#endif

#define MAXFDS 16 /* descriptors one read can carry before MSG_CTRUNC */
#define DEFAULT_BUFSIZE 4096
#define MAX_BUFSIZE (16 * 1024 * 1024)

#define EXIT_SYSCALL 1
#define EXIT_USAGE 2
#define EXIT_PROTOCOL 3

/* Receive control buffer: room for MAXFDS descriptors plus one credentials message. */
#define RECV_CONTROL (CMSG_SPACE(MAXFDS * sizeof(int)) + CRED_SPACE)
/* Descriptors one read can deliver at most; the count comes from the kernel, so bound it. */
#define FDS_PER_READ (RECV_CONTROL / sizeof(int))

typedef void (*userfunc_t)(const unsigned char *text, size_t len);

/* How a receive failed: a system call (exit 1) or the peer broke the protocol (exit 3). */
struct failure {
    int code;
    char message[256];
};

static void fail_syscall(struct failure *f, const char *call)
{
    f->code = EXIT_SYSCALL;
    snprintf(f->message, sizeof f->message, "%s: %s", call, strerror(errno));
}

static void fail_protocol(struct failure *f, const char *what)
{
    f->code = EXIT_PROTOCOL;
    snprintf(f->message, sizeof f->message, "%s", what);
}

static void close_all(int *fds, size_t *count)
{
    size_t i;

    for (i = 0; i < *count; i++)
        close(fds[i]);
    *count = 0;
}

/* ---- sending ---------------------------------------------------------------------------- */

/* Status byte for a negative fd: its low byte, except that 0 would mean "descriptor follows". */
static unsigned char status_for(int fd)
{
    unsigned char status = (unsigned char)((0u - (unsigned int)fd) & 0xFFu);

    return status == 0 ? 1 : status;
}

static int send_fd(int sock, int fd, int with_creds)
{
    union {
        struct cmsghdr align; /* CMSG_* need a properly aligned buffer */
        unsigned char bytes[CMSG_SPACE(sizeof(int)) + CRED_SPACE];
    } control;
    unsigned char data[2];
    struct iovec iov;
    struct msghdr msg;
    struct cmsghdr *cmsg = NULL;
    size_t used = 0;
    ssize_t n;

    memset(&control, 0, sizeof control);
    memset(&msg, 0, sizeof msg);
    data[0] = 0;
    data[1] = fd >= 0 ? 0 : status_for(fd);
    iov.iov_base = data;
    iov.iov_len = sizeof data;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    /* Full size while building, so CMSG_NXTHDR sees room for the second message. */
    msg.msg_controllen = sizeof control.bytes;

    if (fd >= 0) {
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
        used += CMSG_SPACE(sizeof(int));
    }
    if (with_creds) {
#if defined(CRED_LINUX) || defined(CRED_CMSGCRED)
        cmsg = cmsg == NULL ? CMSG_FIRSTHDR(&msg) : CMSG_NXTHDR(&msg, cmsg);
        cmsg->cmsg_level = SOL_SOCKET;
#if defined(CRED_LINUX)
        {
            /* Linux checks these against the sender, so they cannot be forged. */
            struct ucred cred;

            cred.pid = getpid();
            cred.uid = geteuid();
            cred.gid = getegid();
            cmsg->cmsg_type = SCM_CREDENTIALS;
            cmsg->cmsg_len = CMSG_LEN(sizeof cred);
            memcpy(CMSG_DATA(cmsg), &cred, sizeof cred);
            used += CMSG_SPACE(sizeof cred);
        }
#else
        /* The kernel overwrites the (zeroed) struct with the sender's real credentials. */
        cmsg->cmsg_type = SCM_CREDS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(struct cmsgcred));
        used += CMSG_SPACE(sizeof(struct cmsgcred));
#endif
#endif
    }
    msg.msg_controllen = used;
    if (used == 0)
        msg.msg_control = NULL;

    do
        n = sendmsg(sock, &msg, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    /* A non-blocking stream may take only the first byte; the control data went with it. */
    while (n < 2) {
        ssize_t m = write(sock, data + n, (size_t)(2 - n));

        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            return -1;
        n += m;
    }
    return 0;
}

static int send_err(int sock, int code, const unsigned char *text, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(sock, text + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        done += (size_t)n;
    }
    if (code >= 0)
        code = -1;
    return send_fd(sock, code, 0);
}

/* ---- receiving -------------------------------------------------------------------------- */

struct received {
    int fds[2 * FDS_PER_READ]; /* the final read and, on a stream, the 1-byte status read */
    size_t nfds;
    int ctrunc;
    int have_uid;
    uid_t uid;
};

/* One recvmsg; appends descriptors and credentials to *got. Returns bytes read or -1. */
static ssize_t read_once(int sock, unsigned char *buf, size_t len, struct received *got, struct failure *f)
{
    union {
        struct cmsghdr align;
        unsigned char bytes[RECV_CONTROL];
    } control;
    struct iovec iov;
    struct msghdr msg;
    struct cmsghdr *cmsg;
    ssize_t nr;

    memset(&control, 0, sizeof control);
    memset(&msg, 0, sizeof msg);
    iov.iov_base = buf;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;

    do
        nr = recvmsg(sock, &msg, 0);
    while (nr < 0 && errno == EINTR);
    if (nr < 0) {
        fail_syscall(f, "recvmsg");
        return -1;
    }

    /* Take ownership of every descriptor first, so that each error path below can close them. */
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET)
            continue;
        if (cmsg->cmsg_type == SCM_RIGHTS && cmsg->cmsg_len >= CMSG_LEN(0)) {
            size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            size_t i;

            for (i = 0; i < n && got->nfds < sizeof got->fds / sizeof got->fds[0]; i++)
                memcpy(&got->fds[got->nfds++], CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
        }
#if defined(CRED_LINUX)
        else if (cmsg->cmsg_type == SCM_CREDENTIALS && cmsg->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;

            memcpy(&cred, CMSG_DATA(cmsg), sizeof cred);
            /* pid 0: queued before SO_PASSCRED was on and not attached by the sender, so no real credentials. */
            if (cred.pid != 0) {
                got->uid = cred.uid;
                got->have_uid = 1;
            }
        }
#elif defined(CRED_CMSGCRED)
        else if (cmsg->cmsg_type == SCM_CREDS && cmsg->cmsg_len >= CMSG_LEN(sizeof(struct cmsgcred))) {
            struct cmsgcred cred;

            memcpy(&cred, CMSG_DATA(cmsg), sizeof cred);
            got->uid = cred.cmcred_uid;
            got->have_uid = 1;
        }
#endif
    }

    if (msg.msg_flags & MSG_CTRUNC) {
        got->ctrunc = 1;
        fail_protocol(f, "control data truncated");
        return -1;
    }
    if (nr == 0) {
        fail_protocol(f, "connection closed by server");
        return -1;
    }
    if (msg.msg_flags & MSG_TRUNC) {
        fail_protocol(f, "message truncated");
        return -1;
    }
    return nr;
}

static int is_stream(int sock)
{
    int type = 0;
    socklen_t len = sizeof type;

    /* If this fails, recvmsg will fail too and report why; assume a stream meanwhile. */
    if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return 1;
    return type == SOCK_STREAM;
}

/*
 * The receiver of both recv_fd and recv_ufd. Returns the descriptor (>= 0), -status (< 0),
 * or INT_MIN with *f filled in. want_uid asks for the sender's uid in *uidp.
 */
static int recv_common(int sock, size_t bufsize, int want_uid, uid_t *uidp, userfunc_t userfunc, struct failure *f)
{
    struct received got;
    unsigned char *buf;
    int stream = is_stream(sock);
    int result = INT_MIN;

    memset(&got, 0, sizeof got);
    buf = malloc(bufsize);
    if (buf == NULL) {
        fail_syscall(f, "malloc");
        return INT_MIN;
    }

    for (;;) {
        ssize_t nr = read_once(sock, buf, bufsize, &got, f);
        unsigned char *nul;
        size_t at, len;
        unsigned char status;

        if (nr < 0)
            break;
        len = (size_t)nr;
        nul = memchr(buf, 0, len);
        if (nul == NULL) {
            /* Only text: a descriptor has no business here. */
            close_all(got.fds, &got.nfds);
            userfunc(buf, len);
            continue;
        }
        at = (size_t)(nul - buf);
        if (at > 0)
            userfunc(buf, at);

        if (at + 1 == len) {
            if (!stream) {
                /* A record that ends at the NUL has no status; reading on would take the next record. */
                fail_protocol(f, "message format error");
                break;
            }
            if (read_once(sock, &status, 1, &got, f) < 0)
                break;
        } else if (at + 2 == len) {
            status = buf[at + 1];
        } else {
            fail_protocol(f, "message format error");
            break;
        }

        if (status != 0) {
            close_all(got.fds, &got.nfds);
            result = -(int)status;
        } else if (got.nfds == 0) {
            fail_protocol(f, got.ctrunc ? "status = 0 but no fd (MSG_CTRUNC set)" : "status = 0 but no fd");
            break;
        } else {
            size_t i;

            /* Keep the first descriptor; extra ones are the sender's mistake, not ours to leak. */
            result = got.fds[0];
            for (i = 1; i < got.nfds; i++)
                close(got.fds[i]);
            got.nfds = 0;
        }
        break;
    }
    free(buf);
    if (result == INT_MIN) {
        close_all(got.fds, &got.nfds);
        return INT_MIN;
    }

    if (want_uid) {
#if defined(CRED_PEERCRED)
        struct xucred cred;
        socklen_t len = sizeof cred;

        memset(&cred, 0, sizeof cred);
        if (getsockopt(sock, SOL_LOCAL, LOCAL_PEERCRED, &cred, &len) < 0) {
            fail_syscall(f, "getsockopt");
        } else if (cred.cr_version != XUCRED_VERSION) {
            fail_protocol(f, "LOCAL_PEERCRED: unexpected xucred version");
        } else {
            got.uid = cred.cr_uid;
            got.have_uid = 1;
        }
#endif
        if (!got.have_uid) {
            if (f->code == 0)
                fail_protocol(f, "no credentials received");
            if (result >= 0)
                close(result);
            return INT_MIN;
        }
        *uidp = got.uid;
    }
    return result;
}

static int recv_fd(int sock, size_t bufsize, userfunc_t userfunc, struct failure *f)
{
    return recv_common(sock, bufsize, 0, NULL, userfunc, f);
}

static int recv_ufd(int sock, size_t bufsize, uid_t *uidp, userfunc_t userfunc, struct failure *f)
{
#if defined(CRED_LINUX)
    int on = 1;

    /* Must be on before the message is queued for the kernel to attach credentials unasked. */
    if (setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) {
        fail_syscall(f, "setsockopt");
        return INT_MIN;
    }
#elif !defined(CRED_CMSGCRED) && !defined(CRED_PEERCRED)
    (void)sock;
    (void)bufsize;
    (void)uidp;
    (void)userfunc;
    fail_protocol(f, "no credential mechanism");
    return INT_MIN;
#endif
#if defined(CRED_LINUX) || defined(CRED_CMSGCRED) || defined(CRED_PEERCRED)
    return recv_common(sock, bufsize, 1, uidp, userfunc, f);
#endif
}

/* ---- command line ----------------------------------------------------------------------- */

static void print_hex_line(const unsigned char *text, size_t len)
{
    size_t i;

    fputs("text ", stdout);
    for (i = 0; i < len; i++)
        printf("%02x", text[i]);
    putchar('\n');
}

static int usage(void)
{
    fputs("usage: apue_fd send_fd SOCK FD [--creds]\n"
          "       apue_fd send_err SOCK CODE HEXTEXT\n"
          "       apue_fd recv_fd SOCK [BUFSIZE]\n"
          "       apue_fd recv_ufd SOCK [BUFSIZE]\n",
          stderr);
    return EXIT_USAGE;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (*s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a fresh buffer (*out, never NULL on success). Returns -1 on bad input. */
static int decode_hex(const char *hex, unsigned char **out, size_t *len)
{
    size_t n = strlen(hex), i;
    unsigned char *bytes;

    if (n % 2 != 0)
        return -1;
    bytes = malloc(n / 2 + 1);
    if (bytes == NULL)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = hex_digit((unsigned char)hex[2 * i]), lo = hex_digit((unsigned char)hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(bytes);
            return -1;
        }
        bytes[i] = (unsigned char)(hi * 16 + lo);
    }
    *out = bytes;
    *len = n / 2;
    return 0;
}

static int finish(int code)
{
    fflush(stdout);
    return code;
}

static int cmd_send(int argc, char **argv)
{
    long sock, value;
    int rc;

    if (parse_long(argv[2], 0, INT_MAX, &sock) < 0 || parse_long(argv[3], INT_MIN, INT_MAX, &value) < 0)
        return usage();
    if (strcmp(argv[1], "send_fd") == 0) {
        int creds = 0;

        if (argc == 5 && strcmp(argv[4], "--creds") == 0)
            creds = 1;
        else if (argc != 4)
            return usage();
        rc = send_fd((int)sock, (int)value, creds);
    } else {
        unsigned char *text;
        size_t len;

        if (argc != 5 || decode_hex(argv[4], &text, &len) < 0)
            return usage();
        rc = send_err((int)sock, (int)value, text, len);
        free(text);
    }
    if (rc < 0) {
        printf("error %s\n", strerror(errno));
        return finish(EXIT_SYSCALL);
    }
    return finish(0);
}

static int cmd_recv(int argc, char **argv)
{
    long sock, bufsize = DEFAULT_BUFSIZE;
    struct failure f;
    struct stat st;
    uid_t uid = 0;
    int want_uid = strcmp(argv[1], "recv_ufd") == 0;
    int result;

    if (argc > 4 || parse_long(argv[2], 0, INT_MAX, &sock) < 0)
        return usage();
    if (argc == 4 && parse_long(argv[3], 1, MAX_BUFSIZE, &bufsize) < 0)
        return usage();

    memset(&f, 0, sizeof f);
    if (want_uid)
        result = recv_ufd((int)sock, (size_t)bufsize, &uid, print_hex_line, &f);
    else
        result = recv_fd((int)sock, (size_t)bufsize, print_hex_line, &f);
    if (result == INT_MIN) {
        printf("error %s\n", f.message);
        return finish(f.code);
    }

    if (want_uid) {
        printf("uid %ju\n", (uintmax_t)uid);
        printf("mechanism %s\n", CRED_NAME);
    }
    printf("result %d\n", result);
    if (result >= 0) {
        if (fstat(result, &st) < 0) {
            printf("error fstat: %s\n", strerror(errno));
            close(result);
            return finish(EXIT_SYSCALL);
        }
        /* dev_t is signed on macOS; print it the way Python's os.stat shows it. */
        if ((dev_t)-1 < (dev_t)1)
            printf("file %jd %ju\n", (intmax_t)st.st_dev, (uintmax_t)st.st_ino);
        else
            printf("file %ju %ju\n", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
        close(result);
    }
    return finish(0);
}

int main(int argc, char **argv)
{
    /* A peer that went away must be an error message, not a silent death by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    if (argc < 3)
        return usage();
    if ((strcmp(argv[1], "send_fd") == 0 || strcmp(argv[1], "send_err") == 0) && argc >= 4)
        return cmd_send(argc, argv);
    if (strcmp(argv[1], "recv_fd") == 0 || strcmp(argv[1], "recv_ufd") == 0)
        return cmd_recv(argc, argv);
    return usage();
}
