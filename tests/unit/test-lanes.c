/* test-lanes.c - the lane scheduler on its own: src/lanes.c linked with
 * stubs for the credential switch and the request handlers.
 *
 * Each test runs in a subprocess of its own (lanes are process-wide state,
 * set up once with their cap and idle time).  A thread standing in for the
 * daemon's main thread runs the respawn event.  The stubs record, per lane
 * thread, the identity it "entered", and check that every job runs on a
 * thread of its own identity; jobs can be held at a gate to keep threads
 * busy.  The adversary is a crowd of identities (or blocking jobs) competing
 * for few threads; the victim is the identity that needs a thread now.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "lanes.h"
#include "log.h"
#include "ops.h"

/* ---- stubs ------------------------------------------------------------------ */

/* Request arguments the stub handler reads (lanes.c never looks at them). */
enum { ARG_UID = 1, ARG_GID = 2, ARG_HOLD = 3, ARG_SPIN_US = 4 };

static __thread bool t_entered;
static __thread uid_t t_uid;
static __thread gid_t t_gid;

static atomic_uint entered;        /* caps_enter_lane calls */
static atomic_uint wrong_identity; /* jobs run on a thread of another uid:gid */
static atomic_uint running, max_running;

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static unsigned int held; /* jobs waiting at the gate */

int caps_enter_lane(uid_t uid, gid_t gid)
{
    g_assert_false(t_entered); /* once per thread, never per request */
    t_entered = true;
    t_uid = uid;
    t_gid = gid;
    atomic_fetch_add(&entered, 1);
    return 0;
}

int ops_execute(const struct export *ex, const struct proto_req *req, struct proto_reply *rep,
                unsigned int flags)
{
    unsigned int now = atomic_fetch_add(&running, 1) + 1;
    unsigned int max = atomic_load(&max_running);

    while (now > max && !atomic_compare_exchange_weak(&max_running, &max, now)) {
    }
    if (!t_entered || t_uid != req->a[ARG_UID].d || t_gid != req->a[ARG_GID].d) {
        atomic_fetch_add(&wrong_identity, 1);
    }
    if (req->a[ARG_HOLD].d) {
        pthread_mutex_lock(&gate_lock);
        held++;
        pthread_cond_broadcast(&gate_cond);
        while (!gate_open) {
            pthread_cond_wait(&gate_cond, &gate_lock);
        }
        held--;
        pthread_mutex_unlock(&gate_lock);
    }
    if (req->a[ARG_SPIN_US].d > 0) {
        g_usleep(req->a[ARG_SPIN_US].d);
    }
    atomic_fetch_sub(&running, 1);
    g_assert_cmpuint(flags, ==, 0); /* lanes may block: that is what they are for */
    proto_reply_status(rep, 0);
    return 0;
}

/* ---- harness ---------------------------------------------------------------- */

/* A count of finished jobs one submitter waits on.  pthread, not
 * GAsyncQueue: glib's mutexes are futexes ThreadSanitizer cannot see, so
 * memory handed over through them would look like a race. */
struct notifier {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned int n;
};

static void notifier_init(struct notifier *nt)
{
    pthread_mutex_init(&nt->mu, NULL);
    pthread_cond_init(&nt->cv, NULL);
    nt->n = 0;
}

static void notifier_destroy(struct notifier *nt)
{
    pthread_cond_destroy(&nt->cv);
    pthread_mutex_destroy(&nt->mu);
}

static void notifier_post(struct notifier *nt)
{
    pthread_mutex_lock(&nt->mu);
    nt->n++;
    pthread_cond_signal(&nt->cv);
    pthread_mutex_unlock(&nt->mu);
}

static void notifier_wait(struct notifier *nt)
{
    pthread_mutex_lock(&nt->mu);
    while (nt->n == 0) {
        pthread_cond_wait(&nt->cv, &nt->mu);
    }
    nt->n--;
    pthread_mutex_unlock(&nt->mu);
}

struct tjob {
    struct lane_job job; /* first: done() gets &job */
    gint64 submitted_us;
    gint64 *latency_us; /* where to store submit-to-done time, or NULL */
    struct notifier *notify; /* told when done, or NULL */
};

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static unsigned int done_count;
static atomic_uint bad_replies, off_lane_done;

static struct event_base *main_base;

static void job_done(struct lane_job *job)
{
    struct tjob *tj = (struct tjob *)job;
    static const uint8_t ok[] = {0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0}; /* T_SUCCESS, 4, 0 */

    if (!t_entered) {
        atomic_fetch_add(&off_lane_done, 1); /* done runs on the lane thread */
    }
    if (job->reply_len != sizeof(ok) || memcmp(job->reply, ok, sizeof(ok)) != 0 ||
        job->reply_fd != -1) {
        atomic_fetch_add(&bad_replies, 1);
    }
    if (tj->latency_us != NULL) {
        *tj->latency_us = g_get_monotonic_time() - tj->submitted_us;
    }
    if (tj->notify != NULL) {
        notifier_post(tj->notify);
    }
    lane_job_free(job);
    pthread_mutex_lock(&done_lock);
    done_count++;
    pthread_cond_broadcast(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void submit_notify(uid_t uid, gid_t gid, bool may_block, bool hold, unsigned int spin_us,
                          gint64 *latency_us, struct notifier *notify)
{
    struct tjob *tj = g_new0(struct tjob, 1);

    tj->job.uid = uid;
    tj->job.gid = gid;
    tj->job.may_block = may_block;
    tj->job.done = job_done;
    tj->job.req.type = T_MKDIR;
    tj->job.req.a[ARG_UID].d = uid;
    tj->job.req.a[ARG_GID].d = gid;
    tj->job.req.a[ARG_HOLD].d = hold;
    tj->job.req.a[ARG_SPIN_US].d = spin_us;
    tj->latency_us = latency_us;
    tj->notify = notify;
    tj->submitted_us = g_get_monotonic_time();
    lanes_submit(&tj->job);
}

static void submit(uid_t uid, gid_t gid, bool may_block, bool hold, unsigned int spin_us,
                   gint64 *latency_us)
{
    submit_notify(uid, gid, may_block, hold, spin_us, latency_us, NULL);
}

/* Waits until n jobs in all are done; false after timeout_ms. */
static bool wait_done(unsigned int n, int timeout_ms)
{
    struct timespec deadline;
    bool ok;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&done_lock);
    while (done_count < n && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&done_cond, &done_lock, &deadline);
    }
    ok = done_count >= n;
    pthread_mutex_unlock(&done_lock);
    return ok;
}

static bool wait_held(unsigned int n, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    bool ok;

    pthread_mutex_lock(&gate_lock);
    while (held < n && g_get_monotonic_time() < end) {
        pthread_mutex_unlock(&gate_lock);
        g_usleep(1000);
        pthread_mutex_lock(&gate_lock);
    }
    ok = held >= n;
    pthread_mutex_unlock(&gate_lock);
    return ok;
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* Lane threads alive now, as the kernel sees them. */
static unsigned int lane_threads(void)
{
    GDir *d = g_dir_open("/proc/self/task", 0, NULL);
    const char *tid;
    unsigned int n = 0;

    g_assert_nonnull(d);
    while ((tid = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_strdup_printf("/proc/self/task/%s/comm", tid);
        g_autofree char *comm = NULL;

        if (g_file_get_contents(path, &comm, NULL, NULL) && strcmp(comm, "vpd-lane\n") == 0) {
            n++;
        }
    }
    g_dir_close(d);
    return n;
}

/* Polls until at most n lane threads are left; false after timeout_ms. */
static bool wait_lane_threads_at_most(unsigned int n, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (lane_threads() > n) {
        if (g_get_monotonic_time() > end) {
            return false;
        }
        g_usleep(5000);
    }
    return true;
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
    lanes_respawn();
}

static void *main_loop(void *arg)
{
    event_base_loop(main_base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* The daemon's set-up, with a thread standing in for its main loop. */
static void start_lanes(unsigned int max_threads, unsigned int idle_seconds)
{
    pthread_t tid;

    log_setup(false, LOG_LEVEL_WARNING);
    evthread_use_pthreads();
    main_base = event_base_new();
    lanes_init(max_threads, idle_seconds, event_new(main_base, -1, 0, on_respawn, NULL));
    g_assert_cmpint(pthread_create(&tid, NULL, main_loop, NULL), ==, 0);
    pthread_detach(tid);
}

/* What every test checks at its end: each job ran as its identity and got
 * its reply on its lane thread; the lanes stop cleanly. */
static void finish_lanes(void)
{
    g_assert_cmpuint(atomic_load(&wrong_identity), ==, 0);
    g_assert_cmpuint(atomic_load(&bad_replies), ==, 0);
    g_assert_cmpuint(atomic_load(&off_lane_done), ==, 0);
    g_assert_cmpint(lanes_stop(5), ==, 0);
    g_assert_cmpuint(lane_threads(), ==, 0);
}

/* Runs the test body in a fresh process: lanes are set up once per process. */
static void in_subprocess(void (*body)(void))
{
    if (g_test_subprocess()) {
        body();
        return;
    }
    g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed();
}

/* ---- stress: many identities, few threads ---------------------------------- */

#define STRESS_SUBMITTERS 8
#define STRESS_IDS 40

static unsigned int stress_jobs(void)
{
    const char *env = getenv("LANES_STRESS_JOBS");

    return env != NULL ? (unsigned int)strtoul(env, NULL, 10) : 3000;
}

/* One submitter stands for a few connections: mostly it waits for each
 * job (a connection runs one request at a time, so lanes empty and fill
 * again all the time), sometimes it fires a burst. */
static void *stress_submitter(void *arg)
{
    GRand *rng = g_rand_new_with_seed(GPOINTER_TO_UINT(arg));
    struct notifier notify;
    unsigned int n = stress_jobs(), outstanding = 0;

    notifier_init(&notify);

    for (unsigned int i = 0; i < n; i++) {
        unsigned int id = (unsigned int)g_rand_int_range(rng, 0, STRESS_IDS);
        bool may_block = g_rand_int_range(rng, 0, 10) == 0;
        unsigned int spin = g_rand_int_range(rng, 0, 8) == 0 ? 100 : 0;

        if (may_block) {
            submit_notify(0, 0, true, false, spin, NULL, &notify);
        } else {
            submit_notify(1000 + id, 2000 + id % 7, false, false, spin, NULL, &notify);
        }
        outstanding++;
        if (g_rand_int_range(rng, 0, 16) != 0) {
            for (; outstanding > 0; outstanding--) {
                notifier_wait(&notify);
            }
        }
        /* Now and then a pause long enough for threads to go idle. */
        if (g_rand_int_range(rng, 0, 256) == 0) {
            g_usleep(g_rand_int_range(rng, 0, 3000));
        }
    }
    for (; outstanding > 0; outstanding--) {
        notifier_wait(&notify);
    }
    notifier_destroy(&notify);
    g_rand_free(rng);
    return NULL;
}

static void stress_body(void)
{
    const unsigned int cap = 3;
    pthread_t tids[STRESS_SUBMITTERS];
    unsigned int total = STRESS_SUBMITTERS * stress_jobs();

    /* Idle timeout 1 s: threads also leave by timing out during the run. */
    start_lanes(cap, 1);
    for (unsigned int i = 0; i < STRESS_SUBMITTERS; i++) {
        g_assert_cmpint(pthread_create(&tids[i], NULL, stress_submitter, GUINT_TO_POINTER(i + 1)),
                        ==, 0);
    }
    for (unsigned int i = 0; i < STRESS_SUBMITTERS; i++) {
        pthread_join(tids[i], NULL);
    }
    g_assert_true(wait_done(total, 60000));
    g_test_message("%u jobs, %u lane threads started, at most %u jobs at once", total,
                   atomic_load(&entered), atomic_load(&max_running));
    g_assert_cmpuint(atomic_load(&max_running), <=, cap);
    /* Idle threads are reaped; their lanes are gone. */
    g_assert_true(wait_lane_threads_at_most(0, 5000));
    finish_lanes();
}

static void test_stress(void)
{
    in_subprocess(stress_body);
}

/* ---- a new identity gets a thread from idle ones at once ---------------- */

static void reclaim_body(void)
{
    const unsigned int cap = 64;
    gint64 latency[32] = {0};
    unsigned int done = 0;

    start_lanes(cap, 30);
    /* 64 identities leave 64 idle threads: the cap is reached. */
    for (unsigned int i = 0; i < cap; i++) {
        submit(1000 + i, 1000 + i, false, false, 0, NULL);
    }
    done += cap;
    g_assert_true(wait_done(done, 10000));
    g_assert_cmpuint(lane_threads(), ==, cap);

    /* A 65th identity: an idle thread gives way within milliseconds. */
    submit(5000, 5000, false, false, 0, &latency[0]);
    done++;
    g_assert_true(wait_done(done, 5000));
    g_test_message("65th identity served after %.3f ms", latency[0] / 1000.0);
    g_assert_cmpint(latency[0], <, G_USEC_PER_SEC);

    /* 31 more at once, while all slots are held by idle threads. */
    for (unsigned int i = 1; i < G_N_ELEMENTS(latency); i++) {
        submit(6000 + i, 6000 + i, false, false, 0, &latency[i]);
    }
    done += G_N_ELEMENTS(latency) - 1;
    g_assert_true(wait_done(done, 5000));
    for (unsigned int i = 1; i < G_N_ELEMENTS(latency); i++) {
        g_assert_cmpint(latency[i], <, G_USEC_PER_SEC);
        latency[0] = MAX(latency[0], latency[i]);
    }
    g_test_message("31 new identities at once: slowest served after %.3f ms",
                   latency[0] / 1000.0);
    /* The cap held throughout (threads that gave way have exited). */
    g_assert_true(wait_lane_threads_at_most(cap, 2000));
    g_assert_cmpuint(atomic_load(&entered), ==, cap + G_N_ELEMENTS(latency));
    finish_lanes();
}

static void test_reclaim(void)
{
    in_subprocess(reclaim_body);
}

/* ---- busy threads are not taken; the waiting lane gets the next slot ---- */

static void busy_body(void)
{
    gint64 latency = 0;

    start_lanes(2, 30);
    submit(1000, 1000, false, true, 0, NULL);
    submit(1001, 1001, false, true, 0, NULL);
    g_assert_true(wait_held(2, 5000));
    submit(1002, 1002, false, false, 0, &latency);
    g_usleep(100000);
    pthread_mutex_lock(&done_lock);
    g_assert_cmpuint(done_count, ==, 0); /* both slots busy: it waits */
    pthread_mutex_unlock(&done_lock);
    open_gate();
    g_assert_true(wait_done(3, 5000));
    g_assert_cmpuint(atomic_load(&max_running), <=, 2);
    finish_lanes();
}

static void test_busy_waits(void)
{
    in_subprocess(busy_body);
}

/* ---- blocking jobs take at most half the slots --------------------------- */

static void may_block_body(void)
{
    gint64 lat_guest = 0, lat_root = 0;

    start_lanes(4, 30);
    /* Four blocking jobs: only two run, the others queue on their lane. */
    for (int i = 0; i < 4; i++) {
        submit(0, 0, true, true, 0, NULL);
    }
    g_assert_true(wait_held(2, 5000));
    g_usleep(50000);
    pthread_mutex_lock(&gate_lock);
    g_assert_cmpuint(held, ==, 2);
    pthread_mutex_unlock(&gate_lock);
    /* A guest's creation and a root creation (a lane of its own, though
     * also 0:0) still run at once. */
    submit(1000, 1000, false, false, 0, &lat_guest);
    submit(0, 0, false, false, 0, &lat_root);
    g_assert_true(wait_done(2, 5000));
    g_assert_cmpint(lat_guest, <, G_USEC_PER_SEC);
    g_assert_cmpint(lat_root, <, G_USEC_PER_SEC);
    open_gate();
    g_assert_true(wait_done(6, 5000));
    finish_lanes();
}

static void test_may_block(void)
{
    in_subprocess(may_block_body);
}

/* ---- idle threads leave; a lowered cap is honoured ----------------------- */

static void idle_body(void)
{
    start_lanes(8, 1);
    for (unsigned int i = 0; i < 8; i++) {
        submit(1000 + i, 1000, false, false, 0, NULL);
    }
    g_assert_true(wait_done(8, 5000));
    g_assert_cmpuint(lane_threads(), ==, 8);
    /* Reload with a lower cap: idle threads over it leave at once. */
    lanes_set_max_threads(3);
    g_assert_true(wait_lane_threads_at_most(3, 500));
    /* And the rest after the idle time (1 s). */
    g_assert_true(wait_lane_threads_at_most(0, 3000));
    /* A lane that was reaped comes back on demand. */
    submit(1000, 1000, false, false, 0, NULL);
    g_assert_true(wait_done(9, 5000));
    finish_lanes();
}

static void test_idle(void)
{
    in_subprocess(idle_body);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lanes/stress", test_stress);
    g_test_add_func("/lanes/reclaim-idle-for-new-identity", test_reclaim);
    g_test_add_func("/lanes/busy-threads-are-waited-for", test_busy_waits);
    g_test_add_func("/lanes/may-block-takes-half", test_may_block);
    g_test_add_func("/lanes/idle-threads-leave", test_idle);
    return g_test_run();
}
