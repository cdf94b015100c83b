/* noisy-bench - the noisy-neighbour table of issue 8: how long a quiet
 * guest waits while another guest of the same daemon attacks it.
 *
 * For each row a fresh daemon (two exports, --threads 1, the default
 * knobs, --log-level warning) gets two victims (tests/isolation/victim.c:
 * lstat, open + fstat, mkdir + remove in a loop, 1 ms apart; the one on
 * export A creates as 0:0 on the I/O thread, the one on export B as
 * 7001:7001 through a lane), 0.3 s of warm-up, then `--duration` seconds
 * under one attack from tests/isolation/attacks.c on export A.  The row
 * gives the victims' latency over that window (p50, p99 of correct replies;
 * max of all, a request still waiting at the end included) and every reply
 * that was wrong, missing or dropped.
 *
 * Rows: none, lane-churn, lease, unread-fds, conn-flood, no-readers,
 * pipelining, hung-fs (needs hangfs and /dev/fuse), garbage, log-flood.
 *
 * Measures only: the exit status is 0 whatever the figures (1 if a daemon
 * could not be started, 77 without root).  See doc/performance.md.
 *
 *   noisy-bench [--duration S] [--attacks a,b,...] [--markdown] [--csv FILE]
 *               [--hangfs PATH]      (daemon: $VIRTFS_PROXYD)
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attacks.h"
#include "iso.h"
#include "victim.h"

typedef struct row_ctx {
    iso_daemon *d;
    const char *hangfs;
    int64_t end_ms;
    char note[128];
} row_ctx;

typedef int (*attack_fn)(row_ctx *r);

static void sleep_until_end(const row_ctx *r)
{
    int64_t left = r->end_ms - proc_now_ms();

    if (left > 0) {
        usleep((useconds_t)left * 1000);
    }
}

static int run_none(row_ctx *r)
{
    sleep_until_end(r);
    return 0;
}

static int run_lane_churn(row_ctx *r)
{
    g_autofree char *dir = iso_host(r->d, ISO_A, "race");
    atk_counts c;
    atk_churn *a;

    mkdir(dir, 0777);
    chmod(dir, 0777);
    a = atk_lane_churn_start(r->d->sock[ISO_A], "//race", 8, 1000, 5000);
    sleep_until_end(r);
    atk_lane_churn_stop(a, &c);
    snprintf(r->note, sizeof(r->note), "8 conns, %llu mkdirs as random ids",
             (unsigned long long)c.answered);
    return 0;
}

static atk_lease *lease_pending;
static atk_unread *unread_pending;
static atk_flood *flood_pending;
static atk_noread *noread_pending;
static atk_pipe *pipe_pending;
static atk_stuck *stuck_pending[4];
static pid_t hangfs_pid;
static char *hangfs_mnt;

/* Attacks whose harm lasts to the end of the window: held here until the
 * victims' figures are taken, then undone by cleanup(). */
static int run_lease(row_ctx *r)
{
    g_autofree char *dir = iso_host(r->d, ISO_A, "lease");
    char err[ATK_ERRLEN] = "";

    mkdir(dir, 0777);
    chmod(dir, 0777);
    if (atk_lease_start(r->d->sock[ISO_A], dir, "//lease", "leased", ATK_LEASE_TRUNCATE,
                        &lease_pending, err) < 0) {
        snprintf(r->note, sizeof(r->note), "not run: %s", err);
    } else {
        snprintf(r->note, sizeof(r->note), "truncate under a read lease held all along");
    }
    sleep_until_end(r);
    return 0;
}

static int run_unread(row_ctx *r)
{
    g_autofree char *file = iso_host(r->d, ISO_A, "hoard");
    char err[ATK_ERRLEN] = "";

    g_file_set_contents(file, "fds for the hoarder\n", -1, NULL);
    atk_unread_start(r->d->sock[ISO_A], "//hoard", 1, 5000, 5000, &unread_pending, err);
    sleep_until_end(r);
    snprintf(r->note, sizeof(r->note), "5000 T_OPEN never read; daemon fds %d",
             proc_count_fds(r->d->pid));
    return 0;
}

static int run_flood(row_ctx *r)
{
    flood_pending = atk_flood_start(r->d->sock[ISO_A], 200, 10000);
    snprintf(r->note, sizeof(r->note), "200 conns: %d served, %d refused",
             atk_flood_served(flood_pending), atk_flood_refused(flood_pending));
    sleep_until_end(r);
    return 0;
}

static int run_noread(row_ctx *r)
{
    noread_pending = atk_noread_start(r->d->sock[ISO_A], "/", 200, 512 * 1024, 5000);
    sleep_until_end(r);
    snprintf(r->note, sizeof(r->note), "200 conns, %llu KiB of lstat unread; RSS %ld KiB",
             (unsigned long long)atk_noread_bytes(noread_pending) / 1024,
             proc_rss_kb(r->d->pid));
    return 0;
}

static int run_pipe(row_ctx *r)
{
    atk_counts c;

    pipe_pending = atk_pipe_start(r->d->sock[ISO_A], "/", 4);
    sleep_until_end(r);
    atk_pipe_stop(pipe_pending, &c);
    snprintf(r->note, sizeof(r->note), "4 conns, %llu lstat answered",
             (unsigned long long)c.answered);
    return 0;
}

static int run_hangfs(row_ctx *r)
{
    char err[ATK_ERRLEN] = "";

    hangfs_mnt = iso_host(r->d, ISO_A, "fuse");
    mkdir(hangfs_mnt, 0755);
    if (r->hangfs == NULL || access("/dev/fuse", R_OK | W_OK) != 0 ||
        atk_hangfs_mount(r->hangfs, hangfs_mnt, &hangfs_pid, err) < 0) {
        snprintf(r->note, sizeof(r->note), "not run: %s", err[0] ? err : "no hangfs or /dev/fuse");
        sleep_until_end(r);
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        char path[32];

        snprintf(path, sizeof(path), "//fuse/hang%d", i + 1);
        atk_stuck_start(r->d->sock[ISO_A], path, &stuck_pending[i], err);
    }
    sleep_until_end(r);
    snprintf(r->note, sizeof(r->note), "4 lstat stuck in a FUSE fs; daemon threads %d",
             proc_count_threads(r->d->pid));
    return 0;
}

static int run_garbage(row_ctx *r)
{
    int rounds = 0;

    while (proc_now_ms() < r->end_ms) {
        atk_garbage(r->d->sock[ISO_A], 2000, NULL);
        rounds++;
    }
    snprintf(r->note, sizeof(r->note), "%d rounds of 2 bad connections", rounds);
    return 0;
}

static int run_logflood(row_ctx *r)
{
    pc_conn *c = NULL;
    int n = 0;

    if (pc_connect(r->d->sock[ISO_A], 3000, &c) == 0) {
        while (proc_now_ms() < r->end_ms) {
            int rc = atk_mknod_flood(c, "//flood", 500, 10000, NULL);

            if (rc < 0) {
                break;
            }
            n += rc;
        }
        pc_free(c);
    }
    snprintf(r->note, sizeof(r->note), "%d refused device mknods; log %zu KiB", n,
             iso_log_size(r->d) / 1024);
    return 0;
}

/* Whatever outlived the measured window is finished here, unmeasured. */
static void cleanup(void)
{
    if (lease_pending != NULL) {
        atk_lease_release(lease_pending);
        atk_lease_finish(lease_pending, 3000, NULL);
        atk_lease_free(lease_pending);
        lease_pending = NULL;
    }
    atk_unread_free(unread_pending);
    unread_pending = NULL;
    atk_flood_free(flood_pending);
    flood_pending = NULL;
    atk_noread_free(noread_pending);
    noread_pending = NULL;
    atk_pipe_free(pipe_pending);
    pipe_pending = NULL;
    if (hangfs_pid > 0) {
        atk_hangfs_release(hangfs_pid);
    }
    for (int i = 0; i < 4; i++) {
        atk_stuck_free(stuck_pending[i]);
        stuck_pending[i] = NULL;
    }
    if (hangfs_pid > 0) {
        atk_hangfs_unmount(hangfs_mnt, hangfs_pid, NULL);
        hangfs_pid = 0;
    }
    g_free(hangfs_mnt);
    hangfs_mnt = NULL;
}

static const struct {
    const char *name;
    attack_fn fn;
    const char *what;
} attacks[] = {
    {"none", run_none, "no attack"},
    {"lane-churn", run_lane_churn, "mkdir as random uid:gid, 8 connections (finding 1)"},
    {"lease", run_lease, "T_TRUNCATE of a file under a read lease (finding 2)"},
    {"unread-fds", run_unread, "5000 T_OPEN never read (finding 3)"},
    {"conn-flood", run_flood, "200 connections to the same export (finding 5)"},
    {"no-readers", run_noread, "200 connections pipelining, never reading (finding 5)"},
    {"pipelining", run_pipe, "4 connections pipelining lstat flat out (finding 6)"},
    {"hung-fs", run_hangfs, "4 lstat blocked in a FUSE filesystem (finding 2)"},
    {"garbage", run_garbage, "unknown types, oversize frames"},
    {"log-flood", run_logflood, "refused device mknods (finding 10)"},
};

typedef struct row_result {
    const char *name;
    victim_stats st;
    char note[128];
    bool ran;
} row_result;

static int run_row(size_t i, double duration, const char *hangfs, row_result *out)
{
    iso_config cfg = {.log_level = "warning"};
    char err[512] = "";
    victim *v[2] = {NULL, NULL};
    row_ctx r = {.hangfs = hangfs};
    int rc;

    out->name = attacks[i].name;
    rc = iso_daemon_start(attacks[i].name, &cfg, &r.d, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "noisy-bench: %s: %s\n", attacks[i].name, err);
        iso_daemon_free(r.d, true);
        return rc;
    }
    for (int k = 0; k < 2; k++) {
        victim_opts o = {
            .sock = r.d->sock[k],
            .export_dir = r.d->dir[k],
            .name = k == ISO_A ? "a" : "b",
            .uid = k == ISO_A ? 0 : 7001,
            .gid = k == ISO_A ? 0 : 7001,
        };

        if (victim_start(&o, &v[k]) < 0) {
            fprintf(stderr, "noisy-bench: %s: victim %s cannot start\n", attacks[i].name,
                    o.name);
            victim_stop(v[0], NULL);
            iso_daemon_free(r.d, true);
            return -EIO;
        }
    }
    usleep(300000);
    victim_reset(v[0]);
    victim_reset(v[1]);
    r.end_ms = proc_now_ms() + (int64_t)(duration * 1000);
    attacks[i].fn(&r);
    victim_snapshot(v[0], &out->st);
    {
        victim_stats b;

        victim_snapshot(v[1], &b);
        victim_stats_merge(&out->st, &b);
    }
    cleanup();
    victim_stop(v[0], NULL);
    victim_stop(v[1], NULL);
    memcpy(out->note, r.note, sizeof(out->note));
    out->ran = true;
    iso_daemon_free(r.d, false);
    return 0;
}

static void print_table(const row_result *rows, size_t n, bool markdown, double duration)
{
    if (markdown) {
        printf("| attack | victim p50 | p99 | max | correct | wrong/missing/dropped | attack "
               "figures |\n|---|---:|---:|---:|---:|---:|---|\n");
    } else {
        printf("%-11s %10s %10s %10s %8s %7s  %s\n", "attack", "p50", "p99", "max", "correct",
               "errors", "attack figures");
    }
    for (size_t i = 0; i < n; i++) {
        const victim_stats *s = &rows[i].st;
        unsigned long long errs = s->wrong + s->missing + s->dropped + s->connect_failures;

        if (!rows[i].ran) {
            continue;
        }
        if (markdown) {
            printf("| %s | %.3f ms | %.3f ms | %.1f ms | %llu | %llu/%llu/%llu | %s |\n",
                   rows[i].name, s->p50_us / 1000.0, s->p99_us / 1000.0, s->max_us / 1000.0,
                   (unsigned long long)s->requests, (unsigned long long)s->wrong,
                   (unsigned long long)s->missing,
                   (unsigned long long)(s->dropped + s->connect_failures), rows[i].note);
        } else {
            printf("%-11s %7.3f ms %7.3f ms %7.1f ms %8llu %7llu  %s\n", rows[i].name,
                   s->p50_us / 1000.0, s->p99_us / 1000.0, s->max_us / 1000.0,
                   (unsigned long long)s->requests, errs, rows[i].note);
        }
    }
    printf("%s(victims: 2, one per export, %.1f s per row; latency of a victim request while "
           "the attack runs on export A)\n",
           markdown ? "\n" : "", duration);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: noisy-bench [--duration S] [--attacks a,b,...] [--markdown] "
               "[--csv FILE] [--hangfs PATH]\n  attacks:");
    for (size_t i = 0; i < G_N_ELEMENTS(attacks); i++) {
        fprintf(f, " %s", attacks[i].name);
    }
    fprintf(f, "\n  daemon: $VIRTFS_PROXYD\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"duration", required_argument, NULL, 'd'}, {"attacks", required_argument, NULL, 'a'},
        {"markdown", no_argument, NULL, 'm'},       {"csv", required_argument, NULL, 'c'},
        {"hangfs", required_argument, NULL, 'f'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    row_result rows[G_N_ELEMENTS(attacks)];
    g_autofree char *exe_dir = iso_exe_dir();
    g_autofree char *hangfs = g_build_filename(exe_dir, "hangfs", NULL);
    const char *only = NULL, *csv = NULL;
    double duration = 3.0;
    bool markdown = false;
    int opt, status = 0;

    while ((opt = getopt_long(argc, argv, "d:a:mc:f:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            duration = strtod(optarg, NULL);
            break;
        case 'a':
            only = optarg;
            break;
        case 'm':
            markdown = true;
            break;
        case 'c':
            csv = optarg;
            break;
        case 'f':
            g_free(hangfs);
            hangfs = g_strdup(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (duration <= 0 || duration > 600) {
        fprintf(stderr, "noisy-bench: --duration must be in (0, 600]\n");
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "noisy-bench: needs root (the daemon serves every uid)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGIO, SIG_IGN);
    iso_raise_nofile(16384);
    iso_watchdog_arm((unsigned int)(G_N_ELEMENTS(attacks) * (duration + 30)));
    memset(rows, 0, sizeof(rows));
    for (size_t i = 0; i < G_N_ELEMENTS(attacks); i++) {
        if (only != NULL) {
            g_auto(GStrv) names = g_strsplit(only, ",", -1);

            if (!g_strv_contains((const gchar *const *)names, attacks[i].name)) {
                continue;
            }
        }
        fprintf(stderr, "noisy-bench: %s: %s...\n", attacks[i].name, attacks[i].what);
        if (run_row(i, duration, access(hangfs, X_OK) == 0 ? hangfs : NULL, &rows[i]) < 0) {
            status = 1;
        }
    }
    print_table(rows, G_N_ELEMENTS(rows), markdown, duration);
    if (csv != NULL) {
        FILE *f = fopen(csv, "w");

        if (f == NULL) {
            fprintf(stderr, "noisy-bench: %s: %s\n", csv, strerror(errno));
            return 1;
        }
        fprintf(f, "attack,p50_us,p99_us,max_us,correct,wrong,missing,dropped,connect_failures\n");
        for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
            const victim_stats *s = &rows[i].st;

            if (rows[i].ran) {
                fprintf(f, "%s,%lld,%lld,%lld,%llu,%llu,%llu,%llu,%llu\n", rows[i].name,
                        (long long)s->p50_us, (long long)s->p99_us, (long long)s->max_us,
                        (unsigned long long)s->requests, (unsigned long long)s->wrong,
                        (unsigned long long)s->missing, (unsigned long long)s->dropped,
                        (unsigned long long)s->connect_failures);
            }
        }
        fclose(f);
    }
    return status;
}
