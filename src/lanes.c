/* lanes.c - credential lanes.
 *
 * A lane is the set of threads acting as one uid:gid.  Each thread switches
 * its own credentials once, when it starts (caps_enter_lane), and keeps them
 * until it exits: no thread ever switches per request, and no credential
 * state can leak from one request to the next (bugs R1/R2 of the reference
 * helper, PROTOCOL.md §7.3).  Lanes appear on demand and their threads exit
 * when idle; the total number of lane threads is capped.
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
#include "worker.h"

#define LANE_MAX_THREADS 4 /* parallelism within one identity */
#define LANE_STACK_SIZE (256 * 1024)

struct lane {
    uint64_t key;
    uid_t uid;
    gid_t gid;
    struct lane_job *head, *tail;
    unsigned int threads;
    unsigned int idle;
    bool starving; /* queued on lanes.starving, waiting for a thread slot */
    pthread_cond_t wake;
};

static struct {
    pthread_mutex_t lock;
    GHashTable *by_id; /* uid << 32 | gid -> struct lane */
    GQueue starving;
    unsigned int threads;
    unsigned int max_threads;
    unsigned int idle_seconds;
    struct event *respawn;
    bool stopping;
    pthread_cond_t all_gone; /* signalled when the last lane thread exits */
    GArray *finished;        /* pthread_t of exited threads, to be joined */
} lanes = {.lock = PTHREAD_MUTEX_INITIALIZER, .all_gone = PTHREAD_COND_INITIALIZER};

void lanes_init(unsigned max_threads, unsigned idle_seconds, struct event *respawn)
{
    lanes.by_id = g_hash_table_new(g_int64_hash, g_int64_equal);
    lanes.finished = g_array_new(FALSE, FALSE, sizeof(pthread_t));
    g_queue_init(&lanes.starving);
    lanes.max_threads = max_threads;
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
        /* Cannot happen for creations; never send a reply QEMU would misread. */
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

static void *lane_main(void *arg)
{
    struct lane *lane = arg;
    struct proto_reply *rep = malloc(sizeof(*rep));
    int cred_err = caps_enter_lane(lane->uid, lane->gid);

    pthread_mutex_lock(&lanes.lock);
    for (;;) {
        struct lane_job *job = lane->head;
        struct timespec deadline;

        if (job != NULL) {
            lane->head = job->next;
            if (lane->head == NULL) {
                lane->tail = NULL;
            }
            pthread_mutex_unlock(&lanes.lock);
            run_job(job, cred_err, rep);
            worker_complete(job);
            pthread_mutex_lock(&lanes.lock);
            continue;
        }
        if (lanes.stopping || !g_queue_is_empty(&lanes.starving)) {
            break; /* shutdown, or hand this thread's slot to a lane that has none */
        }
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += lanes.idle_seconds;
        lane->idle++;
        int rc = pthread_cond_timedwait(&lane->wake, &lanes.lock, &deadline);
        lane->idle--;
        if (rc == ETIMEDOUT && lane->head == NULL) {
            break;
        }
    }
    lane->threads--;
    lanes.threads--;
    if (lane->threads == 0 && lane->head == NULL) {
        g_hash_table_remove(lanes.by_id, &lane->key);
        pthread_cond_destroy(&lane->wake);
        free(lane);
    }
    /* Joined by lanes_respawn (or lanes_stop): a thread that has switched
     * credentials must be gone for good before the process exits. */
    pthread_t self = pthread_self();

    g_array_append_val(lanes.finished, self);
    if (!lanes.stopping) {
        event_active(lanes.respawn, 0, 0);
    }
    if (lanes.threads == 0) {
        pthread_cond_broadcast(&lanes.all_gone);
    }
    pthread_mutex_unlock(&lanes.lock);
    free(rep);
    return NULL;
}

/* Starts one more thread for lane; called with lanes.lock held. */
static int spawn_locked(struct lane *lane)
{
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, LANE_STACK_SIZE);
    rc = pthread_create(&tid, &attr, lane_main, lane);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_warn("lane %u:%u: cannot start a thread: %s", (unsigned)lane->uid,
                 (unsigned)lane->gid, strerror(rc));
        return -rc;
    }
    lane->threads++;
    lanes.threads++;
    return 0;
}

/* Answers every queued job of a lane that cannot get a thread. */
static void fail_queued_locked(struct lane *lane, int err)
{
    while (lane->head != NULL) {
        struct lane_job *job = lane->head;

        lane->head = job->next;
        job_set_error(job, err);
        worker_complete(job);
    }
    lane->tail = NULL;
}

/* Makes sure a lane with queued work has (or will get) a thread. */
static void schedule_locked(struct lane *lane)
{
    if (lane->idle > 0) {
        pthread_cond_signal(&lane->wake);
    } else if (lane->threads < LANE_MAX_THREADS && lanes.threads < lanes.max_threads) {
        if (spawn_locked(lane) < 0 && lane->threads == 0) {
            fail_queued_locked(lane, -EAGAIN);
        }
    } else if (lane->threads == 0 && !lane->starving) {
        log_info("lane %u:%u waits: all %u lane threads are busy", (unsigned)lane->uid,
                 (unsigned)lane->gid, lanes.max_threads);
        lane->starving = true;
        g_queue_push_tail(&lanes.starving, lane);
    }
}

void lanes_submit(struct lane_job *job)
{
    uint64_t key = (uint64_t)job->uid << 32 | job->gid;
    struct lane *lane;

    job->next = NULL;
    job->reply_fd = -1;
    pthread_mutex_lock(&lanes.lock);
    lane = g_hash_table_lookup(lanes.by_id, &key);
    if (lane == NULL) {
        lane = calloc(1, sizeof(*lane));
        if (lane == NULL) {
            pthread_mutex_unlock(&lanes.lock);
            job_set_error(job, -ENOMEM);
            worker_complete(job);
            return;
        }
        lane->key = key;
        lane->uid = job->uid;
        lane->gid = job->gid;
        pthread_cond_init(&lane->wake, NULL);
        g_hash_table_insert(lanes.by_id, &lane->key, lane);
    }
    if (lane->tail != NULL) {
        lane->tail->next = job;
    } else {
        lane->head = job;
    }
    lane->tail = job;
    schedule_locked(lane);
    pthread_mutex_unlock(&lanes.lock);
}

/* Joins the threads that have exited; called with lanes.lock held.  They
 * have nothing left to do but return, so the wait is short. */
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
    while (lanes.threads < lanes.max_threads && !g_queue_is_empty(&lanes.starving)) {
        struct lane *lane = g_queue_pop_head(&lanes.starving);

        lane->starving = false;
        if (lane->head != NULL && lane->threads == 0 && spawn_locked(lane) < 0) {
            fail_queued_locked(lane, -EAGAIN);
        }
    }
    pthread_mutex_unlock(&lanes.lock);
}

int lanes_stop(unsigned int timeout_s)
{
    struct timespec deadline;
    GHashTableIter it;
    gpointer lane;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_s;
    pthread_mutex_lock(&lanes.lock);
    lanes.stopping = true;
    if (lanes.by_id != NULL) {
        g_hash_table_iter_init(&it, lanes.by_id);
        while (g_hash_table_iter_next(&it, NULL, &lane)) {
            pthread_cond_broadcast(&((struct lane *)lane)->wake);
        }
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
