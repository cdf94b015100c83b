/* lanes.c - credential lanes.
 *
 * A lane is the set of threads acting as one uid:gid.  Each thread switches
 * its own credentials once, when it starts (caps_enter_lane), and keeps them
 * until it exits: no thread ever switches per request, and no credential
 * state can leak from one request to the next (bugs R1/R2 of the reference
 * helper, PROTOCOL.md §7.3).  Lanes appear on demand and their threads exit
 * when idle; the total number of lane threads is capped.
 *
 * Scheduling, all under lanes.lock:
 * - a job goes to an idle thread of its lane if there is one; a lane with
 *   no thread at all joins lanes.waiting, a FIFO of lanes owed a thread;
 * - free slots go to lanes.waiting in order, and only threads holding the
 *   daemon's credentials start threads (lanes_submit, lanes_respawn): a lane
 *   thread's children would inherit its guest identity;
 * - while the waiting lanes outnumber the slots that are free or about to
 *   be, idle threads give way: the longest idle is told to quit, and its
 *   exit wakes lanes_respawn, which hands its slot on;
 * - a lane thread whose lane has no work exits instead of idling when some
 *   waiting lane still needs its slot.
 * A lane is freed exactly when nothing refers to it: no thread (counted in
 * lane->threads from spawn to exit), no queued job, not on lanes.waiting.
 * lane_put_locked() is the one place that decides, so a lane can never be
 * freed while a thread or the waiting queue still points at it.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "lanes.h"
#include "log.h"
#include "ops.h"

#define LANE_MAX_THREADS 4 /* parallelism within one identity */
#define LANE_STACK_SIZE (256 * 1024)

struct lane_key {
    uid_t uid;
    gid_t gid;
    bool may_block;
};

struct lane {
    struct lane_key key;
    struct lane_job *head, *tail; /* queued jobs, oldest first */
    unsigned int threads;         /* threads bound to this lane, from spawn to exit */
    GQueue idle;                  /* its threads waiting for work (lane_thread.lane_link) */
    bool waiting;                 /* on lanes.waiting: owed a thread */
};

struct lane_thread {
    struct lane *lane;
    pthread_cond_t wake;
    GList lane_link; /* in lane->idle while idle */
    GList idle_link; /* in lanes.idle while idle */
    bool idle;
    bool quit; /* told to give its slot to a waiting lane */
};

static struct {
    pthread_mutex_t lock;
    GHashTable *by_key; /* struct lane_key -> struct lane */
    GQueue waiting;     /* lanes with jobs and no thread, oldest first */
    GQueue idle;        /* idle threads of every lane, longest idle first */
    unsigned int threads;  /* every lane thread, from spawn to exit */
    unsigned int quitting; /* of which told to quit */
    unsigned int max_threads;
    unsigned int idle_seconds;
    struct event *respawn;
    bool stopping;
    pthread_cond_t all_gone; /* signalled when the last lane thread exits */
    GArray *finished;        /* pthread_t of exited threads, to be joined */
} lanes = {.lock = PTHREAD_MUTEX_INITIALIZER, .all_gone = PTHREAD_COND_INITIALIZER};

static guint lane_key_hash(gconstpointer p)
{
    const struct lane_key *k = p;

    return (guint)k->uid * 2654435761u ^ (guint)k->gid ^ (k->may_block ? 0x9e3779b9u : 0);
}

static gboolean lane_key_equal(gconstpointer a, gconstpointer b)
{
    const struct lane_key *x = a, *y = b;

    return x->uid == y->uid && x->gid == y->gid && x->may_block == y->may_block;
}

void lanes_init(unsigned max_threads, unsigned idle_seconds, struct event *respawn)
{
    lanes.by_key = g_hash_table_new(lane_key_hash, lane_key_equal);
    lanes.finished = g_array_new(FALSE, FALSE, sizeof(pthread_t));
    g_queue_init(&lanes.waiting);
    g_queue_init(&lanes.idle);
    lanes.max_threads = max_threads > 0 ? max_threads : 1;
    lanes.idle_seconds = idle_seconds;
    lanes.respawn = respawn;
}

void lane_job_free(struct lane_job *job)
{
    if (job->reply_fd >= 0) {
        close(job->reply_fd);
    }
    free(job->body);
    free(job);
}

static void job_set_error(struct lane_job *job, int err)
{
    struct proto_reply rep;

    proto_reply_error(&rep, proto_reply_kind(job->req.type), err);
    memcpy(job->reply, rep.buf, rep.len);
    job->reply_len = rep.len;
    job->reply_fd = -1;
}

static void run_job(struct lane_job *job, int cred_err, struct proto_reply *rep)
{
    if (rep == NULL) {
        job_set_error(job, -ENOMEM);
        return;
    }
    if (cred_err < 0) {
        proto_reply_error(rep, proto_reply_kind(job->req.type), -EPERM);
    } else {
        ops_execute(job->ex, &job->req, rep, 0);
    }
    if (rep->len > sizeof(job->reply)) {
        /* Cannot happen for what lanes run; never send a reply QEMU would misread. */
        if (rep->fd >= 0) {
            close(rep->fd);
        }
        job_set_error(job, -EIO);
        return;
    }
    memcpy(job->reply, rep->buf, rep->len);
    job->reply_len = rep->len;
    job->reply_fd = rep->fd;
}

/* ---- bookkeeping (all with lanes.lock held) ------------------------------ */

/* Blocking jobs may fill half the slots, so that a hung filesystem never
 * takes every thread from the guests' creations. */
static unsigned int lane_max_threads(const struct lane *lane)
{
    if (lane->key.may_block) {
        return lanes.max_threads > 1 ? lanes.max_threads / 2 : 1;
    }
    return LANE_MAX_THREADS;
}

/* How many more threads must exit so that every waiting lane gets a slot
 * within the cap: threads not told to quit, plus one per waiting lane,
 * beyond max_threads. */
static unsigned int overdrawn_locked(void)
{
    unsigned int wanted = lanes.threads - lanes.quitting + lanes.waiting.length;

    return wanted > lanes.max_threads ? wanted - lanes.max_threads : 0;
}

static void lane_put_locked(struct lane *lane)
{
    if (lane->threads == 0 && lane->head == NULL && !lane->waiting) {
        g_hash_table_remove(lanes.by_key, &lane->key);
        free(lane);
    }
}

static struct lane_job *lane_pop_locked(struct lane *lane)
{
    struct lane_job *job = lane->head;

    if (job != NULL) {
        lane->head = job->next;
        if (lane->head == NULL) {
            lane->tail = NULL;
        }
    }
    return job;
}

/* Takes an idle thread off the idle lists and wakes it: for work, or, with
 * t->quit set, to exit. */
static void thread_wake_locked(struct lane_thread *t)
{
    g_queue_unlink(&t->lane->idle, &t->lane_link);
    g_queue_unlink(&lanes.idle, &t->idle_link);
    t->idle = false;
    pthread_cond_signal(&t->wake);
}

/* Tells the longest idle threads to exit while waiting lanes need slots. */
static void reclaim_locked(void)
{
    while (overdrawn_locked() > 0 && !g_queue_is_empty(&lanes.idle)) {
        struct lane_thread *t = g_queue_peek_head(&lanes.idle);

        t->quit = true;
        lanes.quitting++;
        thread_wake_locked(t);
    }
}

static void *lane_main(void *arg);

/* Starts one more thread for lane.  The caller must hold the daemon's
 * credentials: the new thread inherits them, and drops them itself. */
static int spawn_locked(struct lane *lane)
{
    struct lane_thread *t = calloc(1, sizeof(*t));
    pthread_condattr_t cattr;
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    if (t == NULL) {
        return -ENOMEM;
    }
    t->lane = lane;
    t->lane_link.data = t;
    t->idle_link.data = t;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, LANE_STACK_SIZE);
    rc = pthread_create(&tid, &attr, lane_main, t);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_warn("lane %u:%u: cannot start a thread: %s", (unsigned)lane->key.uid,
                 (unsigned)lane->key.gid, strerror(rc));
        pthread_cond_destroy(&t->wake);
        free(t);
        return -rc;
    }
    lane->threads++;
    lanes.threads++;
    return 0;
}

/* Answers every queued job of a lane that cannot get a thread. */
static void fail_queued_locked(struct lane *lane, int err)
{
    for (struct lane_job *job; (job = lane_pop_locked(lane)) != NULL;) {
        job_set_error(job, err);
        job->done(job);
    }
}

/* Gives free slots to the waiting lanes, oldest first, then makes idle
 * threads give way for the lanes still waiting.  Daemon credentials only. */
static void fill_locked(void)
{
    while (lanes.threads < lanes.max_threads && !g_queue_is_empty(&lanes.waiting)) {
        struct lane *lane = g_queue_pop_head(&lanes.waiting);

        lane->waiting = false;
        /* A waiting lane has jobs and no thread: nothing else starts one. */
        if (spawn_locked(lane) < 0) {
            fail_queued_locked(lane, -EAGAIN);
        }
        lane_put_locked(lane);
    }
    reclaim_locked();
}

/* Makes sure a lane with queued work has, or will get, a thread. */
static void lane_schedule_locked(struct lane *lane)
{
    if (!g_queue_is_empty(&lane->idle)) {
        thread_wake_locked(g_queue_peek_head(&lane->idle));
    } else if (lane->threads == 0 && !lane->waiting) {
        lane->waiting = true;
        g_queue_push_tail(&lanes.waiting, lane);
        fill_locked();
        if (lane->waiting && overdrawn_locked() > 0) {
            /* Guests choose identities: one limiter for all such lines. */
            static struct log_limit busy_log;

            log_guest(&busy_log, LOG_LEVEL_INFO, "lane %u:%u waits: all %u lane threads are busy",
                      (unsigned)lane->key.uid, (unsigned)lane->key.gid, lanes.max_threads);
        }
    } else if (lane->threads > 0 && lane->threads < lane_max_threads(lane) &&
               lanes.threads < lanes.max_threads && g_queue_is_empty(&lanes.waiting)) {
        /* More parallelism for a busy lane, from a slot nobody waits for. */
        spawn_locked(lane);
    }
}

/* ---- lane threads --------------------------------------------------------- */

/* Waits on the idle lists until woken or idle_seconds pass.  Returns false
 * if nobody woke it: the thread has been idle long enough to exit. */
static bool idle_wait_locked(struct lane_thread *t)
{
    struct timespec deadline;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += lanes.idle_seconds;
    t->idle = true;
    g_queue_push_tail_link(&t->lane->idle, &t->lane_link);
    g_queue_push_tail_link(&lanes.idle, &t->idle_link);
    while (t->idle && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&t->wake, &lanes.lock, &deadline);
    }
    if (!t->idle) {
        return true;
    }
    g_queue_unlink(&t->lane->idle, &t->lane_link);
    g_queue_unlink(&lanes.idle, &t->idle_link);
    t->idle = false;
    return false;
}

static void thread_exit_locked(struct lane_thread *t)
{
    struct lane *lane = t->lane;
    pthread_t self = pthread_self();

    lane->threads--;
    lanes.threads--;
    if (t->quit) {
        lanes.quitting--;
    }
    lane_put_locked(lane);
    /* Joined by lanes_respawn (or lanes_stop): a thread that has switched
     * credentials must be gone for good before the process exits.  The
     * same call hands this thread's slot to a waiting lane. */
    g_array_append_val(lanes.finished, self);
    if (!lanes.stopping) {
        event_active(lanes.respawn, 0, 0);
    }
    if (lanes.threads == 0) {
        pthread_cond_broadcast(&lanes.all_gone);
    }
}

static void *lane_main(void *arg)
{
    struct lane_thread *t = arg;
    struct lane *lane = t->lane; /* lives while this thread is counted in it */
    struct proto_reply *rep = malloc(sizeof(*rep));
    int cred_err;

    pthread_setname_np(pthread_self(), "vpd-lane");
    cred_err = caps_enter_lane(lane->key.uid, lane->key.gid);
    pthread_mutex_lock(&lanes.lock);
    for (;;) {
        struct lane_job *job = lane_pop_locked(lane);

        if (job != NULL) {
            pthread_mutex_unlock(&lanes.lock);
            run_job(job, cred_err, rep);
            job->done(job);
            pthread_mutex_lock(&lanes.lock);
            continue;
        }
        /* Its lane has no work: give way if told to, or if a waiting lane
         * needs this slot; otherwise idle. */
        if (t->quit || lanes.stopping || overdrawn_locked() > 0 || !idle_wait_locked(t)) {
            break;
        }
    }
    thread_exit_locked(t);
    pthread_mutex_unlock(&lanes.lock);
    pthread_cond_destroy(&t->wake);
    free(t);
    free(rep);
    return NULL;
}

/* ---- interface ------------------------------------------------------------ */

void lanes_set_max_threads(unsigned max_threads)
{
    pthread_mutex_lock(&lanes.lock);
    lanes.max_threads = max_threads > 0 ? max_threads : 1;
    fill_locked();
    pthread_mutex_unlock(&lanes.lock);
}

void lanes_submit(struct lane_job *job)
{
    struct lane_key key = {.uid = job->uid, .gid = job->gid, .may_block = job->may_block};
    struct lane *lane;

    job->next = NULL;
    job->reply_fd = -1;
    pthread_mutex_lock(&lanes.lock);
    lane = g_hash_table_lookup(lanes.by_key, &key);
    if (lane == NULL) {
        lane = calloc(1, sizeof(*lane));
        if (lane == NULL) {
            pthread_mutex_unlock(&lanes.lock);
            job_set_error(job, -ENOMEM);
            job->done(job);
            return;
        }
        lane->key = key;
        g_queue_init(&lane->idle);
        g_hash_table_insert(lanes.by_key, &lane->key, lane);
    }
    if (lane->tail != NULL) {
        lane->tail->next = job;
    } else {
        lane->head = job;
    }
    lane->tail = job;
    lane_schedule_locked(lane);
    pthread_mutex_unlock(&lanes.lock);
}

/* Joins the threads that have exited.  They have nothing left to do but
 * return, so the wait is short. */
static void join_finished_locked(void)
{
    for (guint i = 0; i < lanes.finished->len; i++) {
        pthread_join(g_array_index(lanes.finished, pthread_t, i), NULL);
    }
    g_array_set_size(lanes.finished, 0);
}

void lanes_respawn(void)
{
    pthread_mutex_lock(&lanes.lock);
    join_finished_locked();
    fill_locked();
    pthread_mutex_unlock(&lanes.lock);
}

int lanes_stop(unsigned int timeout_s)
{
    struct timespec deadline;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_s;
    pthread_mutex_lock(&lanes.lock);
    lanes.stopping = true;
    while (!g_queue_is_empty(&lanes.idle)) {
        thread_wake_locked(g_queue_peek_head(&lanes.idle));
    }
    while (lanes.threads > 0 && rc == 0) {
        rc = pthread_cond_timedwait(&lanes.all_gone, &lanes.lock, &deadline);
    }
    rc = lanes.threads > 0 ? -ETIMEDOUT : 0;
    if (lanes.finished != NULL) {
        join_finished_locked();
    }
    pthread_mutex_unlock(&lanes.lock);
    return rc;
}
