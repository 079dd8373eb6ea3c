/*
 * baselines: the C loops `conformance bench` compares the suite's Python helpers with.
 *
 *   fd_pass  the loop conformance.harness.rights is timed in: over a connected AF_UNIX stream socketpair,
 *            send one byte with one descriptor (/dev/null) in an SCM_RIGHTS message, receive it into a
 *            CMSG_SPACE-sized buffer, walk every control message and close each descriptor that arrived.
 *   lock     the loop conformance.locks.set_lock/unlock is timed in: a non-blocking write lock on the whole
 *            file, then its release. For the fcntl families the caller passes the set-lock command number it
 *            uses itself (F_SETLK for classic POSIX locks, F_OFD_SETLK for OFD locks), so both sides make the
 *            same call even where the C headers lack the name.
 *
 * Written for the suite; it measures, it does not test.
 *
 * Command line: baselines fd_pass ITERATIONS ROUNDS
 *               baselines lock fcntl SETLK_COMMAND PATH ITERATIONS ROUNDS
 *               baselines lock flock - PATH ITERATIONS ROUNDS
 * Prints "best_ns N": the fastest of ROUNDS timed runs of ITERATIONS steps, in nanoseconds.
 * Exit status: 0 ok, 1 a system call failed, 2 usage.
 */

#define _DEFAULT_SOURCE 1
#if defined(__sun)
/* illumos: the msg_control layout and CMSG_* need _XPG4_2 (see conformance/native/apue_fd.c). */
#define _XOPEN_SOURCE 600
#define __EXTENSIONS__ 1
#endif

#include <sys/types.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What one step works on, set up by main before the timed runs. */
static int sock_send, sock_receive, passed_fd; /* fd_pass */
static int lock_fd, lock_command, use_flock;   /* lock */

union control { /* a control buffer for one descriptor, aligned for struct cmsghdr */
    struct cmsghdr header;
    char space[CMSG_SPACE(sizeof(int))];
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int send_one(void)
{
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    union control control;
    struct msghdr msg;
    struct cmsghdr *cmsg;

    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &passed_fd, sizeof(int));
    return sendmsg(sock_send, &msg, 0) == 1 ? 0 : -1;
}

/* Receive one message and close every descriptor in it; the number closed, or -1. */
static int receive_and_close(void)
{
    char byte;
    struct iovec iov = {&byte, 1};
    union control control;
    struct msghdr msg;
    struct cmsghdr *cmsg;
    int closed = 0;

    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    if (recvmsg(sock_receive, &msg, 0) != 1)
        return -1;
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        size_t n, i;
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
            close(fd);
            closed++;
        }
    }
    return closed;
}

static int fd_pass_step(void)
{
    return send_one() == 0 && receive_and_close() == 1 ? 0 : -1;
}

/* One fcntl lock call on the whole file; l_pid stays 0 as OFD locks require. */
static int fcntl_lock(short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    return fcntl(lock_fd, lock_command, &fl);
}

static int lock_step(void)
{
    if (use_flock)
        return flock(lock_fd, LOCK_EX | LOCK_NB) == 0 && flock(lock_fd, LOCK_UN) == 0 ? 0 : -1;
    return fcntl_lock(F_WRLCK) == 0 && fcntl_lock(F_UNLCK) == 0 ? 0 : -1;
}

/* Time ROUNDS runs of ITERATIONS steps and print the fastest. */
static int best_of(const char *count, const char *runs, int (*step)(void))
{
    long iterations = atol(count), rounds = atol(runs), i, r;
    long long best = -1;

    for (r = 0; r < rounds; r++) {
        long long start = now_ns(), took;
        for (i = 0; i < iterations; i++) {
            if (step() != 0) {
                perror("baselines: step");
                return 1;
            }
        }
        took = now_ns() - start;
        if (best < 0 || took < best)
            best = took;
    }
    printf("best_ns %lld\n", best);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: baselines fd_pass ITERATIONS ROUNDS\n"
                    "       baselines lock fcntl|flock SETLK_COMMAND|- PATH ITERATIONS ROUNDS\n");
    return 2;
}

int main(int argc, char **argv)
{
    int pair[2];

    if (argc == 4 && strcmp(argv[1], "fd_pass") == 0 && atol(argv[2]) > 0 && atol(argv[3]) > 0) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0 || (passed_fd = open("/dev/null", O_RDONLY)) < 0) {
            perror("baselines: fd_pass setup");
            return 1;
        }
        sock_send = pair[0];
        sock_receive = pair[1];
        return best_of(argv[2], argv[3], fd_pass_step);
    }
    if (argc == 7 && strcmp(argv[1], "lock") == 0 && atol(argv[5]) > 0 && atol(argv[6]) > 0
        && (strcmp(argv[2], "fcntl") == 0 || strcmp(argv[2], "flock") == 0)) {
        use_flock = strcmp(argv[2], "flock") == 0;
        lock_command = use_flock ? 0 : atoi(argv[3]);
        if ((lock_fd = open(argv[4], O_RDWR)) < 0) {
            perror("baselines: open");
            return 1;
        }
        return best_of(argv[5], argv[6], lock_step);
    }
    return usage();
}
