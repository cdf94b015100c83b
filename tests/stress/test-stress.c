/* test-stress - 1000 concurrent connections on one daemon, bounded in time.
 *
 * Every client thread owns a directory c<i>/ in the export and keeps
 * working until the deadline, in one of four manners (i % 10):
 *   0-4  ping-pong: every request type in turn, checking each result;
 *   5-6  pipelining: batches of 16 requests written at once, then read;
 *   7    slow reader: 200 pipelined 4 KB xattr replies, read one per 10 ms
 *        (its queued output passes 256 KiB: the daemon must stop reading it
 *        and keep serving everybody else);
 *   8-9  quitter: a few requests, then gone mid-frame or with replies unread,
 *        and back on a new connection.
 * Asserts: every reply is what the request must give; no ping-pong request
 * waits longer than STRESS_LATENCY_MS (default 5000) even while the slow
 * readers are stalled; the daemon's RSS stays under STRESS_RSS_MB (default
 * 256; sanitizer builds need more: ASan's quarantine alone is 256 MB); its
 * descriptor count returns to the baseline once everyone has left; it exits
 * cleanly with no sanitizer report.
 * Short form: 20 s.  STRESS_LONG=1: 240 s.  STRESS_CONNS overrides 1000.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "stress-util.h"

#define RSS_BOUND_MB 256
#define BIG_VALUE 4000 /* fits an ext4 block: any /tmp will do */
#define SLOW_BATCH 200 /* 800 KB of replies: well past the 256 KiB bound */

static st_daemon *daemon_;
static int64_t deadline;
static atomic_long n_requests, n_bad, n_conns, max_latency_ms, peak_rss_kb;
static atomic_int threads_done;
static int nconns = 1000;

static void bad(int id, const char *what, int rc)
{
    if (atomic_fetch_add(&n_bad, 1) < 20) {
        g_test_message("client %d: %s: %s", id, what, pc_strerror(rc));
    }
}

#define EXPECT(id, expr, want, what)                                                               \
    do {                                                                                           \
        int64_t t0_ = proc_now_ms();                                                                 \
        int rc_ = (expr);                                                                          \
        int64_t dt_ = proc_now_ms() - t0_;                                                           \
        long m_ = atomic_load(&max_latency_ms);                                                    \
        while (dt_ > m_ && !atomic_compare_exchange_weak(&max_latency_ms, &m_, dt_)) {             \
        }                                                                                          \
        atomic_fetch_add(&n_requests, 1);                                                          \
        if (rc_ != (want)) {                                                                       \
            bad(id, what, rc_);                                                                    \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

/* One round of every request type; false once the connection is unusable. */
static bool ping_pong_round(pc_conn *c, int id, int k)
{
    char p[64], q[64], buf[64];
    pc_proxy_stat st;
    pc_proxy_statfs sf;
    uint64_t gen;
    size_t len;
    int fd = -1;

#define P(fmt_) (snprintf(p, sizeof(p), "//c%d/" fmt_, id), p)
#define Q(fmt_) (snprintf(q, sizeof(q), "//c%d/" fmt_, id), q)
    EXPECT(id, pc_lstat(c, P("f"), &st), 0, "lstat");
    if (st.size != 12 || (st.mode & 0170000) != 0100000) {
        bad(id, "lstat gave wrong size or type", 0);
    }
    EXPECT(id, pc_readlink(c, P("l"), 4096, buf, sizeof(buf), &len), 0, "readlink");
    if (len != 1 || buf[0] != 'f') {
        bad(id, "readlink gave the wrong target", 0);
    }
    EXPECT(id, pc_statfs(c, "/", &sf), 0, "statfs");
    EXPECT(id, pc_getversion(c, P("f"), &gen), 0, "getversion");
    EXPECT(id, pc_lgetxattr(c, 0, P("f"), "user.k", NULL, 0, NULL), 6, "lgetxattr probe");
    EXPECT(id, pc_llistxattr(c, 0, P("f"), NULL, 0, NULL), 7, "llistxattr probe");
    EXPECT(id, pc_chmod(c, P("f"), 0644), 0, "chmod");
    EXPECT(id, pc_chown(c, P("f"), 0, 0), 0, "chown");
    EXPECT(id, pc_utime(c, P("f"), 1000, 0, 2000, 0), 0, "utime");
    EXPECT(id, pc_truncate(c, P("f"), 12), 0, "truncate");
    EXPECT(id, pc_open(c, P("f"), O_RDONLY, &fd), 0, "open");
    close(fd);
    EXPECT(id, pc_create(c, P("n"), O_CREAT | O_EXCL | O_RDWR, 0644, 1000 + k % 3, 1000, &fd), 0,
           "create as a guest uid");
    close(fd);
    EXPECT(id, pc_mkdir(c, 0, 0, P("d"), 0755), 0, "mkdir");
    EXPECT(id, pc_symlink(c, 0, 0, "f", P("s")), 0, "symlink");
    EXPECT(id, pc_link(c, P("f"), Q("h")), 0, "link");
    EXPECT(id, pc_rename(c, P("h"), Q("h2")), 0, "rename");
    EXPECT(id, pc_lsetxattr(c, P("f"), "user.x", "v", 1, 1, 0), 0, "lsetxattr");
    EXPECT(id, pc_lremovexattr(c, P("f"), "user.x"), 0, "lremovexattr");
    EXPECT(id, pc_remove(c, P("h2")), 0, "remove link");
    EXPECT(id, pc_remove(c, P("s")), 0, "remove symlink");
    EXPECT(id, pc_remove(c, P("d")), 0, "remove dir");
    EXPECT(id, pc_remove(c, P("n")), 0, "remove file");
    return true;
#undef P
#undef Q
}

static bool pipeline_round(pc_conn *c, int id, pc_reply *r)
{
    char p[64];

    snprintf(p, sizeof(p), "//c%d/f", id);
    for (int i = 0; i < 16; i++) {
        if (pc_send(c, i % 2 ? 8 : 17, i % 2 ? "S" : "dSs", i % 2 ? p : (void *)0, p,
                    "user.k") < 0) {
            bad(id, "pipelined send", -1);
            return false;
        }
    }
    for (int i = 0; i < 16; i++) {
        int rc = pc_recv(c, i % 2 ? PC_KIND_DATA : PC_KIND_STATUS, r);

        atomic_fetch_add(&n_requests, 1);
        if (rc != 0 || r->result != (i % 2 ? 0 : 6) || (i % 2 && r->len != PC_STAT_SIZE)) {
            bad(id, "pipelined reply", rc != 0 ? rc : r->result);
            return false;
        }
    }
    return true;
}

static bool slow_round(pc_conn *c, int id, pc_reply *r)
{
    for (int i = 0; i < SLOW_BATCH; i++) {
        if (pc_send(c, 17, "dSs", BIG_VALUE, "//big", "user.big") < 0) {
            bad(id, "slow reader send", -1);
            return false;
        }
    }
    for (int i = 0; i < SLOW_BATCH; i++) {
        int rc;

        usleep(10000);
        rc = pc_recv(c, PC_KIND_DATA, r);
        atomic_fetch_add(&n_requests, 1);
        if (rc != 0 || r->result != 0 || r->len != 2 + BIG_VALUE) {
            bad(id, "slow reader reply", rc != 0 ? rc : r->result);
            return false;
        }
    }
    return true;
}

static void *client_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    int manner = id % 10;
    pc_reply *r = g_new0(pc_reply, 1);
    pc_conn *c = NULL;
    unsigned seed = (unsigned)id;

    for (int k = 0; proc_now_ms() < deadline; k++) {
        bool ok = true;

        if (c == NULL) {
            if (pc_connect(daemon_->sock, 10000, &c) < 0) {
                bad(id, "connect", -1);
                break;
            }
            pc_conn_set_timeout(c, 30000);
            atomic_fetch_add(&n_conns, 1);
        }
        if (manner <= 4) {
            ok = ping_pong_round(c, id, k);
        } else if (manner <= 6) {
            ok = pipeline_round(c, id, r);
        } else if (manner == 7) {
            ok = slow_round(c, id, r);
        } else {
            uint8_t f[64];
            int len = pc_encode(f, sizeof(f), 8, "S", "/");
            pc_proxy_stat st;

            ok = pc_lstat(c, "/", &st) == 0;
            atomic_fetch_add(&n_requests, 1);
            if (rand_r(&seed) % 2) {
                pc_send_raw(c, f, (size_t)(rand_r(&seed) % (unsigned)len)); /* mid-frame */
            } else {
                for (int i = 0; i < 8; i++) {
                    pc_send(c, 17, "dSs", BIG_VALUE, "//big", "user.big"); /* unread */
                }
            }
            pc_free(c);
            c = NULL;
            usleep(rand_r(&seed) % 200000);
            continue;
        }
        if (!ok) {
            pc_free(c);
            c = NULL;
        }
    }
    pc_free(c);
    g_free(r);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void prepare_export(void)
{
    const char *big = st_path(daemon_->export_dir, "big");
    char *value = g_malloc(BIG_VALUE);

    st_write(big, "");
    memset(value, 'b', BIG_VALUE);
    setxattr(big, "user.big", value, BIG_VALUE, 0);
    for (int i = 0; i < nconns; i++) {
        char rel[64], *f, *l;
        const char *dir;

        snprintf(rel, sizeof(rel), "c%d", i);
        dir = st_path(daemon_->export_dir, rel);
        mkdir(dir, 0755);
        f = g_build_filename(dir, "f", NULL);
        l = g_build_filename(dir, "l", NULL);
        st_write(f, "hello world\n");
        setxattr(f, "user.k", "value1", 6, 0);
        symlink("f", l);
        g_free(f);
        g_free(l);
    }
    g_free(value);
}

static void test_stress(void)
{
    const char *extra[] = {"--max-connections", "4096", NULL};
    bool long_form = getenv("STRESS_LONG") != NULL;
    int seconds = long_form ? 240 : 20;
    long latency_bound = getenv("STRESS_LATENCY_MS") ? atol(getenv("STRESS_LATENCY_MS")) : 5000;
    long rss_bound_mb = getenv("STRESS_RSS_MB") ? atol(getenv("STRESS_RSS_MB")) : RSS_BOUND_MB;
    pthread_t *tids = g_new0(pthread_t, (size_t)nconns);
    pthread_attr_t attr;
    int baseline, after;
    long rss0;
    int64_t t0;

    if (!st_require()) {
        return;
    }
    st_raise_nofile((unsigned long)nconns * 4 + 1024);
    daemon_ = st_daemon_start("stress", extra);
    if (daemon_ == NULL) {
        return;
    }
    prepare_export();
    baseline = proc_count_fds(daemon_->pid);
    rss0 = proc_rss_kb(daemon_->pid);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    t0 = proc_now_ms();
    deadline = t0 + seconds * 1000;
    for (int i = 0; i < nconns; i++) {
        if (pthread_create(&tids[i], &attr, client_main, (void *)(intptr_t)i) != 0) {
            g_test_message("cannot start client thread %d", i);
            g_test_fail();
            nconns = i;
            break;
        }
    }
    /* Sample the daemon while the clients work. */
    while (atomic_load(&threads_done) < nconns && proc_now_ms() < deadline + 120000) {
        long rss = proc_rss_kb(daemon_->pid);

        if (rss > atomic_load(&peak_rss_kb)) {
            atomic_store(&peak_rss_kb, rss);
        }
        usleep(100000);
    }
    for (int i = 0; i < nconns; i++) {
        pthread_join(tids[i], NULL);
    }
    after = proc_wait_fds(daemon_->pid, baseline, 10000);
    g_test_message("%d clients, %ld connections, %ld requests in %.1f s; %ld bad; max ping-pong "
                   "latency %ld ms; daemon RSS %ld KB at start, peak %ld KB; fds %d before, %d "
                   "after",
                   nconns, atomic_load(&n_conns), atomic_load(&n_requests),
                   (double)(proc_now_ms() - t0) / 1000, atomic_load(&n_bad),
                   atomic_load(&max_latency_ms), rss0, atomic_load(&peak_rss_kb), baseline, after);
    printf("# stress: %d clients, %ld connections, %ld requests, %.1f s, peak RSS %ld KB, fds "
           "%d -> %d, max latency %ld ms\n",
           nconns, atomic_load(&n_conns), atomic_load(&n_requests),
           (double)(proc_now_ms() - t0) / 1000, atomic_load(&peak_rss_kb), baseline, after,
           atomic_load(&max_latency_ms));
    st_check(atomic_load(&n_bad) == 0, "%ld wrong or missing replies", atomic_load(&n_bad));
    st_check(atomic_load(&max_latency_ms) <= latency_bound,
             "a request waited %ld ms (bound %ld): someone waits behind a slow peer",
             atomic_load(&max_latency_ms), latency_bound);
    st_check(atomic_load(&peak_rss_kb) <= rss_bound_mb * 1024L,
             "daemon RSS peaked at %ld KB (bound %ld MB)", atomic_load(&peak_rss_kb), rss_bound_mb);
    st_check(after <= baseline, "daemon holds %d fds after everyone left, %d before", after,
             baseline);
    st_daemon_stop(daemon_);
    g_free(tids);
}

int main(int argc, char **argv)
{
    st_init(&argc, &argv);
    if (getenv("STRESS_CONNS") != NULL) {
        nconns = atoi(getenv("STRESS_CONNS"));
    }
    g_test_add_func("/stress/1000-connections", test_stress);
    return g_test_run();
}
