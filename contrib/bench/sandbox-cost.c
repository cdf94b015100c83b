/* sandbox-cost.c - what the sandbox (src/sandbox.c) adds to the system calls
 * a request makes, measured inside one process tree so that the noise of a
 * shared machine hits every variant alike.
 *
 * Each round forks one child per variant (none, seccomp = kill, Landlock,
 * both), in turn, timed by its own CPU time; the child boxes itself in exactly as the daemon does
 * (sandbox_confine, sandbox_seccomp_install) and times, in a loop, the calls
 * of an lstat request (fstatat beneath a directory fd), of an open request
 * (openat + close) and a bare getppid.  Medians over the rounds, and each
 * variant's ratio to none.  Needs root (Landlock and seccomp need no
 * privilege, but the daemon's code paths assume it).
 *
 * usage: sandbox-cost [ROUNDS [ITERATIONS]]   (default 15, 200000)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "settings.h"

enum { CALL_LSTAT, CALL_OPEN, CALL_GETPPID, NCALLS };
static const char *const call_names[NCALLS] = {"lstat (fstatat)", "open+close (openat)",
                                               "getppid"};
static const char *const variant_names[] = {"none", "seccomp", "landlock", "both"};
#define NVARIANTS 4

static double now_ns(void)
{
    struct timespec ts;

    /* The thread's own CPU time (user and kernel): what the calls cost,
     * without the time other processes of a shared machine take. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void time_calls(int dirfd, long iters, double out[NCALLS])
{
    struct stat st;
    double t;

    t = now_ns();
    for (long i = 0; i < iters; i++) {
        fstatat(dirfd, "d1/f", &st, AT_SYMLINK_NOFOLLOW);
    }
    out[CALL_LSTAT] = (now_ns() - t) / (double)iters;
    t = now_ns();
    for (long i = 0; i < iters; i++) {
        int fd = openat(dirfd, "d1/f", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
            close(fd);
        }
    }
    out[CALL_OPEN] = (now_ns() - t) / (double)iters;
    t = now_ns();
    for (long i = 0; i < iters; i++) {
        getppid();
    }
    out[CALL_GETPPID] = (now_ns() - t) / (double)iters;
}

/* In a child: box in as variant v, time, write the figures to fd. */
static void G_GNUC_NORETURN child(int v, const struct settings *set, int dirfd, long iters,
                                  int fd)
{
    double out[NCALLS];

    if ((v & 2) != 0 && sandbox_confine(SANDBOX_CONFINE_LANDLOCK, set, NULL, NULL, NULL) < 0) {
        _exit(2);
    }
    if ((v & 1) != 0 && sandbox_seccomp_install(SANDBOX_SECCOMP_KILL) < 0) {
        _exit(2);
    }
    time_calls(dirfd, iters, out);
    if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out)) {
        _exit(3);
    }
    _exit(0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    long iters = argc > 2 ? atol(argv[2]) : 200000;
    g_autofree char *dir = g_dir_make_tmp("vp-sandbox-cost.XXXXXX", NULL);
    g_autofree char *export = g_build_filename(dir, "export", NULL);
    g_autofree char *d1 = g_build_filename(export, "d1", NULL);
    g_autofree char *f = g_build_filename(d1, "f", NULL);
    struct settings *set = settings_new();
    struct export_settings *e = g_new0(struct export_settings, 1);
    double *fig;
    int dirfd;

    if (dir == NULL || rounds < 1 || iters < 1) {
        fprintf(stderr, "usage: sandbox-cost [ROUNDS [ITERATIONS]]\n");
        return 2;
    }
    log_setup(false, LOG_LEVEL_WARNING);
    g_mkdir_with_parents(d1, 0755);
    g_file_set_contents(f, "x", 1, NULL);
    e->name = g_strdup("bench");
    e->path = g_strdup(export);
    e->socket = g_build_filename(dir, "bench.sock", NULL);
    g_ptr_array_add(set->exports, e);
    dirfd = open(export, O_PATH | O_DIRECTORY | O_CLOEXEC);
    fig = g_new0(double, (size_t)rounds * NVARIANTS * NCALLS);
    for (int r = 0; r < rounds; r++) {
        for (int v = 0; v < NVARIANTS; v++) {
            int p[2], status;
            pid_t pid;
            double *out = fig + ((size_t)r * NVARIANTS + (size_t)v) * NCALLS;

            if (pipe(p) < 0) {
                return 1;
            }
            pid = fork();
            if (pid == 0) {
                close(p[0]);
                child(v, set, dirfd, iters, p[1]);
            }
            close(p[1]);
            if (read(p[0], out, sizeof(double) * NCALLS) != (ssize_t)(sizeof(double) * NCALLS)) {
                fprintf(stderr, "sandbox-cost: variant %s failed\n", variant_names[v]);
                return 1;
            }
            close(p[0]);
            waitpid(pid, &status, 0);
        }
    }
    printf("| call | none ns | seccomp ns | landlock ns | both ns | seccomp / none | "
           "landlock / none | both / none |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int c = 0; c < NCALLS; c++) {
        double med[NVARIANTS];

        for (int v = 0; v < NVARIANTS; v++) {
            double *col = g_new(double, (size_t)rounds);

            for (int r = 0; r < rounds; r++) {
                col[r] = fig[((size_t)r * NVARIANTS + (size_t)v) * NCALLS + (size_t)c];
            }
            qsort(col, (size_t)rounds, sizeof(double), cmp_double);
            med[v] = col[rounds / 2];
            g_free(col);
        }
        printf("| %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |\n", call_names[c],
               med[0], med[1], med[2], med[3], med[1] / med[0], med[2] / med[0],
               med[3] / med[0]);
    }
    printf("\n%d rounds of %ld calls per variant, medians\n", rounds, iters);
    close(dirfd);
    unlink(f);
    rmdir(d1);
    rmdir(export);
    rmdir(dir);
    settings_free(set);
    g_free(fig);
    return 0;
}
