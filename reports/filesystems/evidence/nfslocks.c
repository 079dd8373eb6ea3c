/* The NFS findings of reports/filesystems, observed a second way, without the suite: C and the system calls only.
 *
 * usage: nfslocks DIR    (DIR on the filesystem to look at; CAP=SECONDS bounds the waiters' wait, default 100)
 *
 * 1. For each kind of lock a holder process takes on a fresh file (flock shared and exclusive, blocking or not; an
 *    fcntl read or write lock on the whole file or on bytes 2-4; an OFD write lock on bytes 0-9), another process
 *    with a description of its own asks F_GETLK and F_OFD_GETLK (also for F_UNLCK, which conflicts with nothing),
 *    then tries F_SETLK, F_OFD_SETLK and flock without waiting. On a local filesystem a query answers what the
 *    attempt meets (POSIX fcntl: F_GETLK reports "the first lock which would prevent this lock from being
 *    created"); l_pid of an OFD holder is -1 (fcntl(2)).
 * 2. Ten threads of one process (one owner) wait for an exclusive lock the holder has; the holder lets go, and the
 *    time each thread was granted after that is printed, "never" if not within CAP seconds.
 * 3. A waiter for an exclusive lock, blocked by a holder of each kind: whether the kernel's lock table (/proc/locks)
 *    lists it as waiting, as it does for every waiter on a local filesystem.
 * 4. One description holds an OFD read lock and a shared flock lock, and lets go of one: another process asks and
 *    tries, which the lock still held must refuse wherever the families meet.
 *
 * Build: cc -O1 -Wall -pthread -o nfslocks nfslocks.c. run_in_guest.py runs it on a tmpfs and over NFS. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>

static const char *dir;
static int counter;

static const char *tname(int t) { return t == F_RDLCK ? "read" : t == F_WRLCK ? "write" : t == F_UNLCK ? "unlck" : "?"; }

static void fresh(char *path) {
    snprintf(path, 256, "%s/f%d-%d", dir, getpid(), counter++);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) { perror("create"); exit(2); }
    if (write(fd, "0123456789abcdef", 16) != 16) { perror("write"); exit(2); }
    close(fd);
}

/* holder: a child that takes a lock and waits; returns its pid, after it has the lock */
enum how { FLOCK_SH, FLOCK_EX, FLOCK_SH_NB, FLOCK_EX_NB, POSIX_RD, POSIX_WR, OFD_WR, POSIX_RD_RANGE, KEPT_FLOCK, KEPT_OFD };
static const char *hname[] = {"flock(LOCK_SH)", "flock(LOCK_EX)", "flock(LOCK_SH|LOCK_NB)", "flock(LOCK_EX|LOCK_NB)",
                              "F_SETLK read whole", "F_SETLK write whole", "F_OFD_SETLK write 0+10",
                              "F_SETLK read 2+3", "the flock lock", "the OFD lock"};

static pid_t hold(const char *path, enum how how, int *release) {
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]); close(go[1]);
        int fd = open(path, O_RDWR);
        int r = -1;
        struct flock fl = {0};
        fl.l_whence = SEEK_SET;
        switch (how) {
        case FLOCK_SH: r = flock(fd, LOCK_SH); break;
        case FLOCK_EX: r = flock(fd, LOCK_EX); break;
        case FLOCK_SH_NB: r = flock(fd, LOCK_SH | LOCK_NB); break;
        case FLOCK_EX_NB: r = flock(fd, LOCK_EX | LOCK_NB); break;
        case POSIX_RD: fl.l_type = F_RDLCK; r = fcntl(fd, F_SETLK, &fl); break;
        case POSIX_WR: fl.l_type = F_WRLCK; r = fcntl(fd, F_SETLK, &fl); break;
        case OFD_WR: fl.l_type = F_WRLCK; fl.l_len = 10; r = fcntl(fd, F_OFD_SETLK, &fl); break;
        case POSIX_RD_RANGE: fl.l_type = F_RDLCK; fl.l_start = 2; fl.l_len = 3; r = fcntl(fd, F_SETLK, &fl); break;
        case KEPT_FLOCK: case KEPT_OFD:  /* both on one description, then one let go of */
            fl.l_type = F_RDLCK;
            r = fcntl(fd, F_OFD_SETLK, &fl) || flock(fd, LOCK_SH);
            fl.l_type = F_UNLCK;
            if (!r) r = how == KEPT_FLOCK ? fcntl(fd, F_OFD_SETLK, &fl) : flock(fd, LOCK_UN);
            break;
        }
        char c = r == 0 ? 'y' : 'n';
        if (r) fprintf(stdout, "  holder %s failed: %s\n", hname[how], strerror(errno));
        fflush(stdout);
        if (write(ready[1], &c, 1) != 1) _exit(3);
        if (read(go[0], &c, 1) < 0) _exit(3);
        _exit(0);
    }
    close(ready[1]); close(go[0]);
    char c = 0;
    if (read(ready[0], &c, 1) != 1 || c != 'y') { fprintf(stdout, "  holder did not get its lock\n"); }
    close(ready[0]);
    *release = go[1];
    return pid;
}

static void let_go(pid_t pid, int release) {
    close(release);
    int st;
    waitpid(pid, &st, 0);
}

static void query(const char *label, int fd, int cmd, short type, pid_t holder) {
    struct flock fl = {0};
    fl.l_type = type; fl.l_whence = SEEK_SET;
    if (fcntl(fd, cmd, &fl)) { printf("  %s %s whole: error %s\n", label, tname(type), strerror(errno)); return; }
    printf("  %s %s whole: %s", label, tname(type), tname(fl.l_type));  /* l_type unchanged for F_UNLCK: none */
    if (fl.l_type != F_UNLCK)
        printf(" %lld+%lld l_pid %d%s", (long long)fl.l_start, (long long)fl.l_len, fl.l_pid,
               fl.l_pid == holder ? " (the holder's pid)" : fl.l_pid == -1 ? " (-1)" : "");
    printf("\n");
}

static void try_set(const char *label, int fd, int cmd, short type) {
    struct flock fl = {0};
    fl.l_type = type; fl.l_whence = SEEK_SET;
    int r = fcntl(fd, cmd, &fl);
    printf("  %s %s whole: %s\n", label, tname(type), r ? strerror(errno) : "granted");
    if (!r) { fl.l_type = F_UNLCK; fcntl(fd, cmd, &fl); }
}

static void try_flock(int fd, int op) {
    int r = flock(fd, op | LOCK_NB);
    printf("  flock(%s|LOCK_NB): %s\n", op == LOCK_EX ? "LOCK_EX" : "LOCK_SH", r ? strerror(errno) : "granted");
    if (!r) flock(fd, LOCK_UN);
}

/* Another process, with a fresh description, asks and tries while the holder holds. */
static void scenario(enum how how) {
    char path[256];
    fresh(path);
    int release;
    pid_t holder = hold(path, how, &release);
    printf("holder %d: %s\n", holder, hname[how]);
    int fd = open(path, O_RDWR);
    query("F_GETLK", fd, F_GETLK, F_WRLCK, holder);
    query("F_GETLK", fd, F_GETLK, F_RDLCK, holder);
    query("F_OFD_GETLK", fd, F_OFD_GETLK, F_WRLCK, holder);
    query("F_GETLK", fd, F_GETLK, F_UNLCK, holder);  /* an unlock conflicts with nothing */
    query("F_OFD_GETLK", fd, F_OFD_GETLK, F_UNLCK, holder);
    try_set("F_SETLK", fd, F_SETLK, F_WRLCK);
    try_set("F_SETLK", fd, F_SETLK, F_RDLCK);
    try_set("F_OFD_SETLK", fd, F_OFD_SETLK, F_WRLCK);
    try_flock(fd, LOCK_EX);
    try_flock(fd, LOCK_SH);
    close(fd);
    let_go(holder, release);
    unlink(path);
}


static int table_waiters(const char *path) {
    struct stat st;
    if (stat(path, &st)) return -1;
    char ident[64];
    snprintf(ident, sizeof ident, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
    FILE *f = fopen("/proc/locks", "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, " -> ") && strstr(line, ident)) n++;
    fclose(f);
    return n;
}

/* Waits until the lock table lists `want` waiters on the file, 2 s at most (a waiter the table cannot show is given
 * the 2 s to fall asleep), or until the process `waiter` (if not 0) has ended, which *ended then says; returns how
 * many waiters the table lists. */
static int listed_within(const char *path, int want, pid_t waiter, int *ended) {
    int n = 0, st;
    for (int i = 0; i < 200 && (n = table_waiters(path)) < want; i++) {
        if (waiter && waitpid(waiter, &st, WNOHANG) == waiter) { *ended = 1; break; }
        usleep(10000);
    }
    return n;
}

/* Ten threads of one process wait on one lock (one owner: the process for F_SETLKW, the shared description for
 * F_OFD_SETLKW and flock); the holder, another process, lets go; each thread's grant time after that is printed. */
#define THREADS 10
enum family { POSIX, OFD, FLOCK };
static const char *fname[] = {"posix F_SETLKW", "ofd F_OFD_SETLKW", "flock LOCK_EX"};
static int shared_fd;
static enum family fam;
static volatile double granted_at[THREADS];  /* CLOCK_MONOTONIC; -2 still waiting, -1 refused */

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void *waiter(void *arg) {
    long i = (long)arg;
    struct flock fl = {0};
    fl.l_type = F_WRLCK; fl.l_whence = SEEK_SET;
    int r = fam == POSIX ? fcntl(shared_fd, F_SETLKW, &fl) : fam == OFD ? fcntl(shared_fd, F_OFD_SETLKW, &fl)
                                                                          : flock(shared_fd, LOCK_EX);
    if (r) fprintf(stderr, "thread %ld: %s\n", i, strerror(errno));
    granted_at[i] = r ? -1 : now();
    return NULL;
}

static void threads_scenario(enum family f, double cap) {
    char path[256];
    fresh(path);
    int release, told[2];
    pid_t holder = hold(path, f == POSIX ? POSIX_WR : f == FLOCK ? FLOCK_EX_NB : OFD_WR, &release);
    if (pipe(told)) exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        close(release); close(told[1]);
        fam = f;
        shared_fd = open(path, O_RDWR);
        pthread_t t[THREADS];
        for (long i = 0; i < THREADS; i++) { granted_at[i] = -2; pthread_create(&t[i], NULL, waiter, (void *)i); }
        double released = 0;  /* the parent tells when it let go */
        if (read(told[0], &released, sizeof released) != sizeof released) _exit(3);
        while (now() < released + cap) {
            int all = 1;
            for (int i = 0; i < THREADS; i++) if (granted_at[i] == -2) all = 0;
            if (all) break;
            usleep(100000);  /* a bounded poll of the threads' answers, not a synchronisation */
        }
        printf("  %s, %d threads of one owner: granted after", fname[f], THREADS);
        for (int i = 0; i < THREADS; i++) {
            if (granted_at[i] == -2) printf(" never(%.0fs)", cap);
            else if (granted_at[i] == -1) printf(" error");
            else printf(" %.2f", granted_at[i] - released);
        }
        printf(" s\n");
        fflush(stdout);
        _exit(0);
    }
    close(told[0]);
    int ended = 0;
    listed_within(path, THREADS, 0, &ended);  /* the threads asleep in their waits */
    double released = now();
    let_go(holder, release);
    if (write(told[1], &released, sizeof released) != sizeof released) perror("write");
    close(told[1]);
    int st;
    waitpid(pid, &st, 0);
    unlink(path);
}

/* A waiter for an exclusive whole-file lock, blocked by a holder of each kind: does the kernel's lock table
 * (/proc/locks, fs/locks.c lock_get_status) list it as waiting ("->")? The waiter is killed afterwards. */
static void table_scenario(enum how how, enum family f) {
    char path[256];
    fresh(path);
    int release;
    pid_t holder = hold(path, how, &release);
    pid_t waiter = fork();
    if (waiter == 0) {
        close(release);
        int fd = open(path, O_RDWR);
        struct flock fl = {0};
        fl.l_type = F_WRLCK; fl.l_whence = SEEK_SET;
        int r = f == POSIX ? fcntl(fd, F_SETLKW, &fl) : f == OFD ? fcntl(fd, F_OFD_SETLKW, &fl) : flock(fd, LOCK_EX);
        _exit(r ? 1 : 0);
    }
    int st, done = 0;
    int listed = listed_within(path, 1, waiter, &done);  /* asleep in its wait by now, or granted */
    printf("  holder %s, waiter %s: %s; the lock table lists %d waiter(s)\n", hname[how], fname[f],
           done ? "granted at once" : "waiting", listed);
    if (!done) { kill(waiter, SIGKILL); waitpid(waiter, &st, 0); }
    let_go(holder, release);
    unlink(path);
}

/* One description holds an OFD read lock and flock(LOCK_SH) on the whole file, and lets go of one of them: the other
 * is still held, so another process's write lock and exclusive flock must still be refused where the two families
 * meet (the flock alone, if OFD is let go; the OFD lock, if flock is). */
static void one_description_scenario(enum how how) {
    char path[256];
    fresh(path);
    int release;
    pid_t holder = hold(path, how, &release);
    printf("one description held an OFD read lock and flock(LOCK_SH), then let go of %s; another process:\n",
           hname[how == KEPT_FLOCK ? KEPT_OFD : KEPT_FLOCK]);
    int fd = open(path, O_RDWR);
    query("F_GETLK", fd, F_GETLK, F_WRLCK, holder);
    try_set("F_SETLK", fd, F_SETLK, F_WRLCK);
    try_flock(fd, LOCK_EX);
    close(fd);
    let_go(holder, release);
    unlink(path);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: nfslocks DIR\n"); return 2; }
    dir = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (enum how how = FLOCK_SH; how <= POSIX_RD_RANGE; how++) scenario(how);
    double cap = getenv("CAP") ? atof(getenv("CAP")) : 100;
    for (enum family f = POSIX; f <= FLOCK; f++) threads_scenario(f, cap);
    printf("waiters in the lock table\n");
    for (enum how how = POSIX_WR; how <= OFD_WR; how++)
        for (enum family f = POSIX; f <= FLOCK; f++) table_scenario(how, f);
    for (enum family f = POSIX; f <= FLOCK; f++) table_scenario(FLOCK_EX_NB, f);
    one_description_scenario(KEPT_FLOCK);
    one_description_scenario(KEPT_OFD);
    return 0;
}
