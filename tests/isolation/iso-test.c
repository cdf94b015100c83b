/* iso-test.c - see iso-test.h. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "iso-test.h"

void iso_test_init(int *argc, char ***argv)
{
    vt_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    iso_raise_nofile(16384); /* attackers hold thousands of fds */
    iso_watchdog_arm(ISO_WATCHDOG_S);
}

bool iso_require(void)
{
    const char *p = getenv("VIRTFS_PROXYD");

    if (p == NULL || access(p, X_OK) != 0) {
        g_test_skip("VIRTFS_PROXYD is not set or not executable");
        return false;
    }
    if (geteuid() != 0) {
        g_test_skip("needs root (the daemon and its attackers switch uids)");
        return false;
    }
    return true;
}

int64_t iso_latency_bound_us(void)
{
    const char *e = getenv("ISO_LATENCY_MS");
    long ms = e != NULL ? strtol(e, NULL, 10) : 0;

    return (ms > 0 ? ms : 1000) * 1000;
}

static void raise_peak_int(atomic_int *peak, int v)
{
    int cur = atomic_load(peak);

    while (v > cur && !atomic_compare_exchange_weak(peak, &cur, v)) {
    }
}

static void *sampler_main(void *arg)
{
    iso_fixture *f = arg;

    while (!atomic_load(&f->sampler_stop)) {
        pid_t pid = f->pid;
        long rss, cur;

        /* Once the daemon is gone the probes return -1 (the test has
         * failed by then: iso_check_alive says so). */
        if (pid > 0) {
            raise_peak_int(&f->peak_fds, proc_count_fds(pid));
            raise_peak_int(&f->peak_threads, proc_count_threads(pid));
            rss = proc_rss_kb(pid);
            cur = atomic_load(&f->peak_rss_kb);
            while (rss > cur && !atomic_compare_exchange_weak(&f->peak_rss_kb, &cur, rss)) {
            }
        }
        usleep(10000);
    }
    return NULL;
}

void iso_peaks_reset(iso_fixture *f)
{
    atomic_store(&f->peak_fds, 0);
    atomic_store(&f->peak_threads, 0);
    atomic_store(&f->peak_rss_kb, 0);
}

bool iso_setup(iso_fixture *f, const char *name, const iso_config *cfg, int32_t uid_a,
               int32_t uid_b, unsigned long (*watch)(void *), void *watch_arg)
{
    char err[512] = "";
    int rc;

    memset(f, 0, sizeof(*f));
    rc = iso_daemon_start(name, cfg, &f->d, err, sizeof(err));
    if (rc < 0) {
        g_test_message("cannot start the daemon: %s", err);
        if (f->d != NULL) {
            g_autofree char *log = iso_log_text(f->d, NULL);

            g_test_message("daemon log:\n%s", log);
        }
        g_test_fail();
        iso_daemon_free(f->d, false);
        f->d = NULL;
        return false;
    }
    for (int i = 0; i < 2; i++) {
        victim_opts o = {
            .sock = f->d->sock[i],
            .export_dir = f->d->dir[i],
            .name = i == ISO_A ? "a" : "b",
            .uid = i == ISO_A ? uid_a : uid_b,
            .gid = i == ISO_A ? uid_a : uid_b,
            .watch = watch,
            .watch_arg = watch_arg,
        };

        rc = victim_start(&o, &f->v[i]);
        if (rc < 0) {
            g_test_message("cannot start victim %s: %s", o.name, pc_strerror(rc));
            g_test_fail();
            iso_teardown(f);
            return false;
        }
    }
    f->started = true;
    /* Let both victims go round their loop (lanes started, files opened)
     * before the counts the test compares with are taken. */
    usleep(300000);
    f->pid = f->d->pid;
    f->fds0 = proc_count_fds(f->d->pid);
    f->threads0 = proc_count_threads(f->d->pid);
    f->rss0_kb = proc_rss_kb(f->d->pid);
    g_test_message("daemon pid %d before the attack: %d fds, %d threads, RSS %ld KiB",
                   (int)f->d->pid, f->fds0, f->threads0, f->rss0_kb);
    for (int i = 0; i < 2; i++) {
        victim_reset(f->v[i]);
    }
    f->window_start_ms = proc_now_ms();
    iso_peaks_reset(f);
    pthread_create(&f->sampler, NULL, sampler_main, f);
    return true;
}

void iso_check_victims(iso_fixture *f, const char *phase, victim_stats *out)
{
    int64_t bound = iso_latency_bound_us();
    int64_t left = f->window_start_ms + ISO_MIN_WINDOW_MS - proc_now_ms();

    if (left > 0) {
        usleep((useconds_t)left * 1000);
    }
    f->window_start_ms = proc_now_ms();
    for (int i = 0; i < 2; i++) {
        victim_stats st;
        char line[600];

        if (f->v[i] == NULL) {
            continue;
        }
        victim_snapshot(f->v[i], &st);
        victim_reset(f->v[i]);
        victim_stats_format(&st, line, sizeof(line));
        g_test_message("%s: victim on export %s: %s", phase, i == ISO_A ? "A" : "B", line);
        iso_check(victim_stats_clean(&st), "%s: victim on export %s was not served correctly",
                  phase, i == ISO_A ? "A" : "B");
        iso_check(st.max_us < bound, "%s: victim on export %s waited %lld ms (bound %lld ms)",
                  phase, i == ISO_A ? "A" : "B", (long long)st.max_us / 1000,
                  (long long)bound / 1000);
        if (out != NULL) {
            if (i == 0) {
                *out = st;
            } else {
                victim_stats_merge(out, &st);
            }
        }
    }
}

void iso_check_alive(iso_fixture *f, const char *phase)
{
    int status = 0;
    g_autofree char *report = NULL;

    iso_check(iso_daemon_alive(f->d, &status), "%s: the daemon died (wait status 0x%x)", phase,
              status);
    report = iso_log_sanitizer_report(f->d);
    iso_check(report == NULL, "%s: sanitizer report in the daemon's log:\n%s", phase,
              report != NULL ? report : "");
}

void iso_check_fds_back(iso_fixture *f, int timeout_ms)
{
    int n;

    if (f->d->pid <= 0) {
        return;
    }
    n = proc_wait_fds(f->d->pid, f->fds0 + ISO_FD_SLACK, timeout_ms);
    g_test_message("daemon fds after the attacker left: %d (before the attack %d, slack %d)", n,
                   f->fds0, ISO_FD_SLACK);
    iso_check(n <= f->fds0 + ISO_FD_SLACK,
              "the daemon still holds %d fds %d ms after the attacker left (%d before)", n,
              timeout_ms, f->fds0);
}

void iso_check_threads(iso_fixture *f, int extra, const char *why)
{
    int peak = atomic_load(&f->peak_threads);

    g_test_message("daemon threads: %d at most (before the attack %d; allowed +%d: %s)", peak,
                   f->threads0, extra, why);
    iso_check(peak <= f->threads0 + extra, "the daemon ran %d threads (before the attack %d)",
              peak, f->threads0);
}

bool iso_connect_served(iso_fixture *f, int idx, int timeout_ms)
{
    pc_conn *c = NULL;
    pc_proxy_stat st;
    int rc = pc_connect(f->d->sock[idx], timeout_ms, &c);

    if (rc == 0) {
        pc_conn_set_timeout(c, timeout_ms);
        rc = pc_lstat(c, "/", &st);
    }
    pc_free(c);
    if (rc != 0) {
        g_test_message("a fresh connection to export %s: %s", idx == ISO_A ? "A" : "B",
                       pc_strerror(rc));
    }
    return rc == 0;
}

void iso_teardown(iso_fixture *f)
{
    bool keep;

    for (int i = 0; i < 2; i++) {
        victim_stop(f->v[i], NULL);
        f->v[i] = NULL;
    }
    if (f->started) {
        atomic_store(&f->sampler_stop, true);
        pthread_join(f->sampler, NULL);
        f->started = false;
    }
    if (f->d == NULL) {
        return;
    }
    if (f->d->pid > 0) {
        int st = iso_daemon_stop(f->d, 5000);

        iso_check(st != -ETIMEDOUT, "the daemon ignored SIGTERM for 5 s (killed)");
    }
    keep = g_test_failed() || getenv("VT_KEEP_LOGS") != NULL;
    if (keep) {
        g_test_message("daemon log kept: %s", f->d->log);
    }
    iso_daemon_free(f->d, keep);
    f->d = NULL;
}

size_t iso_count_lines(const char *text, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        n += text[i] == '\n';
    }
    return n;
}
