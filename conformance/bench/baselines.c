/*
 * baselines: the C loops `conformance bench` compares the suite's Python helpers with.
 *
 *   fd_pass  the loop conformance.harness.rights is timed in: over a connected AF_UNIX stream socketpair,
 *            send one byte with one descriptor (/dev/null) in an SCM_RIGHTS message, receive it into a
 *            CMSG_SPACE-sized buffer, walk every control message and close each descriptor that arrived.
 *   graphs   the loop conformance.explore.inflight checks graphs of sockets in flight in: per batch of up to
 *            256 graphs, each graph's stream socketpairs, every edge sent (the socket and a pipe end riding
 *            along, one SCM_RIGHTS message), everything closed, then the collector triggered (a socketpair
 *            made and closed) until every graph's pipe reaches end of file, or until a witness (a socket
 *            holding itself in flight, made after the batch) is freed and 50 ms more have passed. The graphs
 *            come on standard input, a line each: NODES EDGES V U V U ... (V's socket goes into U's queue).
 *   lock     the loop conformance.locks.set_lock/unlock is timed in: a non-blocking write lock on the whole
 *            file, then its release. For the fcntl families the caller passes the set-lock command number it
 *            uses itself (F_SETLK for classic POSIX locks, F_OFD_SETLK for OFD locks), so both sides make the
 *            same call even where the C headers lack the name.
 *
 * Written for the suite; it measures, it does not test.
 *
 * Command line: baselines fd_pass ITERATIONS ROUNDS
 *               baselines graphs ROUNDS < GRAPHS
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

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

/* One byte with n descriptors in one SCM_RIGHTS message (n at most 2). */
static int send_fds(int sock, const int *fds, int n)
{
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(2 * sizeof(int))];
    } control;
    struct msghdr msg;
    struct cmsghdr *cmsg;

    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, n * sizeof(int));
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int send_one(void)
{
    return send_fds(sock_send, &passed_fd, 1);
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

/* ---- graphs ---- */

#define MAX_NODES 16
#define MAX_EDGES 64
#define BATCH 256
#define GRACE_NS 50000000LL
#define GIVE_UP_NS 5000000000LL

struct graph {
    int nodes, edges;
    int v[MAX_EDGES], u[MAX_EDGES];
};

static struct graph *graphs;
static long graph_count;

static int trigger_collector(void)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
        return -1;
    close(pair[0]);
    close(pair[1]);
    return 0;
}

/* A socket whose only reference waits in its own queue, with a pipe end beside it: the read end, or -1. */
static int make_witness(void)
{
    int pair[2], pipe_fds[2], carried[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) != 0 || pipe(pipe_fds) != 0)
        return -1;
    carried[0] = pair[1];
    carried[1] = pipe_fds[1];
    if (send_fds(pair[0], carried, 2) != 0)
        return -1;
    close(pair[0]);
    close(pair[1]);
    close(pipe_fds[1]);
    return pipe_fds[0];
}

/* Build, close and collect graphs[first..first+count); the number left uncollected, or -1. */
static int graph_batch(long first, long count)
{
    static struct pollfd watched[BATCH + 1];
    static int in_flight[BATCH][MAX_NODES], senders[BATCH][MAX_NODES], riders[BATCH];
    long i, pending;
    int e, n, witness, pair[2], marker[2], carried[2];
    long long witness_freed = -1, give_up;
    char buffer[64];

    for (i = 0; i < count; i++) {
        const struct graph *g = &graphs[first + i];
        if (pipe(marker) != 0)
            return -1;
        watched[i].fd = marker[0];
        watched[i].events = POLLIN;
        riders[i] = marker[1];
        for (n = 0; n < g->nodes; n++) {
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
                return -1;
            in_flight[i][n] = pair[0];
            senders[i][n] = pair[1];
        }
        for (e = 0; e < g->edges; e++) {
            carried[0] = in_flight[i][g->v[e]];
            carried[1] = riders[i];
            if (send_fds(senders[i][g->u[e]], carried, 2) != 0)
                return -1;
        }
        for (n = 0; n < g->nodes; n++) {
            close(in_flight[i][n]);
            close(senders[i][n]);
        }
        close(riders[i]);
    }
    if ((witness = make_witness()) < 0)
        return -1;
    watched[count].fd = witness;
    watched[count].events = POLLIN;
    pending = count;
    give_up = now_ns() + GIVE_UP_NS;
    while (pending > 0 || witness_freed < 0) {
        long long now = now_ns();
        int ready;
        if (witness_freed >= 0 && now > witness_freed + GRACE_NS)
            break;
        if (now > give_up)
            break;
        ready = poll(watched, count + 1, 5);
        if (ready < 0 && errno != EINTR)
            return -1;
        if (ready <= 0) {
            if (trigger_collector() != 0)
                return -1;
            continue;
        }
        for (i = 0; i <= count; i++) {
            if (watched[i].fd < 0 || !(watched[i].revents & (POLLIN | POLLHUP)))
                continue;
            if (read(watched[i].fd, buffer, sizeof buffer) == 0) {
                close(watched[i].fd);
                watched[i].fd = -1;
                if (i == count)
                    witness_freed = now_ns();
                else
                    pending--;
            }
        }
    }
    for (i = 0; i <= count; i++)
        if (watched[i].fd >= 0)
            close(watched[i].fd);
    return (int)pending;
}

static int graphs_step(void)
{
    long first;
    for (first = 0; first < graph_count; first += BATCH) {
        long count = graph_count - first < BATCH ? graph_count - first : BATCH;
        if (graph_batch(first, count) < 0)
            return -1;
    }
    return 0;
}

static int read_graphs(FILE *f)
{
    long capacity = 0;
    int e;
    for (;;) {
        struct graph g;
        if (fscanf(f, "%d %d", &g.nodes, &g.edges) != 2)
            break;
        if (g.nodes < 1 || g.nodes > MAX_NODES || g.edges < 1 || g.edges > MAX_EDGES)
            return -1;
        for (e = 0; e < g.edges; e++)
            if (fscanf(f, "%d %d", &g.v[e], &g.u[e]) != 2 || g.v[e] < 0 || g.v[e] >= g.nodes || g.u[e] < 0
                || g.u[e] >= g.nodes)
                return -1;
        if (graph_count == capacity) {
            capacity = capacity ? 2 * capacity : 1024;
            if ((graphs = realloc(graphs, capacity * sizeof *graphs)) == NULL)
                return -1;
        }
        graphs[graph_count++] = g;
    }
    return graph_count > 0 && feof(f) ? 0 : -1;
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
                    "       baselines graphs ROUNDS < GRAPHS\n"
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
    if (argc == 3 && strcmp(argv[1], "graphs") == 0 && atol(argv[2]) > 0) {
        if (read_graphs(stdin) != 0) {
            fprintf(stderr, "baselines: standard input: not a list of graphs\n");
            return 1;
        }
        return best_of("1", argv[2], graphs_step);
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
