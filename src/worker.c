/* worker.c - I/O threads, the queues between them and the rest, and the
 * watchdog that moves connections off a thread stuck in the kernel.
 *
 * Hand-offs in both directions (new or moved connections from other threads,
 * finished jobs from lanes) go through a mutex-protected queue plus
 * event_active() on the worker's wake event: one wake-up, no polling.
 *
 * Moving a connection: a worker holds its `own` mutex at all times except
 * inside the system calls of a request (worker_op_begin/end).  The watchdog
 * looks at each worker's op_seq every io-stall-ms / 2; one that stayed odd
 * (inside a request) for io-stall-ms is stuck.  The watchdog then takes its
 * `own` mutex, which the worker wants back only when its request returns,
 * and moves every other connection: their events are freed on the stuck
 * worker's loop (libevent's locks make that safe from another thread, and
 * none of their callbacks can be running: the thread is inside the busy
 * one's), and the connection is queued to a healthy worker, which makes its
 * events again.  A lane job in flight follows the connection: lanes hand it
 * to whichever worker conn_worker() names, under that worker's lock.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "lanes.h"
#include "log.h"
#include "ops.h"
#include "progress.h"
#include "registry.h"
#include "tally.h"
#include "worker.h"

struct handoff {
    struct conn *moved;      /* a connection from a stuck worker, or NULL: */
    int fd;                  /* a new one */
    struct export *ex;       /* a reference, passed on to the connection */
    struct ucred peer;
    int slot;                /* progress slot, or -1 */
    struct conn_handover *h; /* what a previous process had, or NULL */
};

static struct worker *workers[WORKERS_MAX];
static atomic_uint nworkers;
static atomic_uint total_conns;
static atomic_uint running_workers;
static atomic_uint frame_timeout_s, output_timeout_s, io_stall_ms;
static struct event *conn_closed_event;
static struct event *stopped_event;
static struct event *parked_event;
static atomic_uint unparked_workers;

/* A spare I/O thread with no connection for this long ends. */
#define SPARE_IDLE_MS 1000

/* The watchdog.  mu serialises its scans with parking, so that no
 * connection moves, and no spare worker appears, while an upgrade counts
 * parked workers. */
static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool started, stop, parking;
    struct {
        unsigned int seq;    /* op_seq at the last look */
        long long since_ms;  /* when it was first seen */
        bool stuck;          /* reported, and skipped by workers_assign */
        long long empty_since; /* a spare without connections, since */
    } seen[WORKERS_MAX];
    unsigned int base_threads; /* --threads: spares above it retire when idle */
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static unsigned int worker_count(void)
{
    return atomic_load_explicit(&nworkers, memory_order_acquire);
}

static void worker_check_stopped(struct worker *w)
{
    if (w->draining && g_hash_table_size(w->conns) == 0) {
        event_base_loopbreak(w->base);
    }
}

/* Whether every connection of w is parked; the last worker to get there
 * tells the main thread. */
static void worker_check_parked(struct worker *w)
{
    GHashTableIter it;
    gpointer c;

    if (!w->parking || w->parked) {
        return;
    }
    g_hash_table_iter_init(&it, w->conns);
    while (g_hash_table_iter_next(&it, &c, NULL)) {
        if (!conn_parked(c)) {
            return;
        }
    }
    w->parked = true;
    if (atomic_fetch_sub(&unparked_workers, 1) == 1) {
        event_active(parked_event, 0, 0);
    }
}

/* Applies a park or unpark request from the main thread. */
static void worker_apply_parking(struct worker *w, bool parking)
{
    GList *all;

    if (parking == w->parking) {
        return;
    }
    w->parking = parking;
    w->parked = false;
    /* Parking may end a connection (conn_settle): walk a copy. */
    all = g_hash_table_get_keys(w->conns);
    for (GList *l = all; l != NULL; l = l->next) {
        if (parking) {
            conn_park(l->data);
        } else {
            conn_unpark(l->data);
        }
    }
    g_list_free(all);
}

static void handoff_free(struct handoff *h)
{
    if (h->h != NULL) {
        conn_handover_clear(h->h);
        g_free((void *)h->h->pending);
        g_free(h->h);
    }
    free(h);
}

/* Takes one connection handed to w. */
static void worker_take(struct worker *w, struct handoff *h, bool stopping)
{
    struct conn *c = h->moved;

    if (c != NULL) {
        conn_attach(c);
    } else {
        c = stopping ? NULL : conn_new(w, h->fd, h->ex, &h->peer, h->slot, h->h);
        if (c == NULL) {
            if (h->slot >= 0) {
                registry_send(REG_CLOSED, (unsigned int)h->slot, NULL, -1);
                progress_slot_free(h->slot);
            }
            close(h->fd);
            tally_remove(h->ex, h->peer.uid); /* the acceptor counted it */
            for (size_t i = 0; h->h != NULL && i < h->h->n_out_fds; i++) {
                close(h->h->out_fds[i].fd);
            }
            ops_export_unref(h->ex);
            atomic_fetch_sub(&w->load, 1);
            atomic_fetch_sub(&total_conns, 1);
            event_active(conn_closed_event, 0, 0);
            return;
        }
    }
    /* The connection may have ended already: look it up. */
    if (!g_hash_table_contains(w->conns, c)) {
        return;
    }
    if (w->parking) {
        conn_park(c);
    } else if (w->draining) {
        conn_drain(c);
    }
}

/* A spare the watchdog asked to end: it ends only if it is still empty and
 * nothing is on its way to it, decided under both locks, so that nobody can
 * hand it anything afterwards (queue_handoff looks at life under w->lock). */
static bool worker_try_retire(struct worker *w)
{
    bool gone = false;

    if (g_hash_table_size(w->conns) == 0) {
        pthread_mutex_lock(&wd.mu);
        pthread_mutex_lock(&w->lock);
        if (w->retire && g_queue_is_empty(&w->incoming) && g_queue_is_empty(&w->done) &&
            !w->park_request && !w->stopping) {
            atomic_store(&w->life, WORKER_GONE);
            atomic_fetch_sub(&running_workers, 1);
            gone = true;
        }
        w->retire = false;
        pthread_mutex_unlock(&w->lock);
        pthread_mutex_unlock(&wd.mu);
    }
    if (gone) {
        event_base_loopbreak(w->base);
    } else {
        pthread_mutex_lock(&w->lock);
        w->retire = false;
        pthread_mutex_unlock(&w->lock);
        atomic_store(&w->life, WORKER_LIVE);
    }
    return gone;
}

static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    GQueue incoming, done;
    bool stopping, parking, retire;

    pthread_mutex_lock(&w->lock);
    incoming = w->incoming;
    done = w->done;
    g_queue_init(&w->incoming);
    g_queue_init(&w->done);
    stopping = w->stopping;
    parking = w->park_request;
    retire = w->retire;
    pthread_mutex_unlock(&w->lock);

    for (struct handoff *h; (h = g_queue_pop_head(&incoming)) != NULL; handoff_free(h)) {
        worker_take(w, h, stopping);
    }
    for (struct lane_job *job; (job = g_queue_pop_head(&done)) != NULL;) {
        conn_lane_done(job);
    }
    worker_apply_parking(w, parking);
    if (stopping && !w->draining) {
        /* conn_drain may close (and remove) the connection: walk a copy. */
        GList *all = g_hash_table_get_keys(w->conns);

        w->draining = true;
        for (GList *l = all; l != NULL; l = l->next) {
            conn_drain(l->data);
        }
        g_list_free(all);
    }
    if (retire && !stopping && !parking && worker_try_retire(w)) {
        return;
    }
    worker_check_stopped(w);
    worker_check_parked(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    pthread_mutex_lock(&w->own);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    pthread_mutex_unlock(&w->own);
    /* A retired spare was counted out already (worker_try_retire). */
    if (atomic_load(&w->life) != WORKER_GONE &&
        atomic_fetch_sub(&running_workers, 1) == 1 && stopped_event != NULL) {
        event_active(stopped_event, 0, 0);
    }
    return NULL;
}

/* Joins a retired spare and frees its loop: its descriptors go with it. */
static void worker_reap(struct worker *w)
{
    pthread_join(w->thread, NULL);
    event_free(w->ev_wake);
    event_base_free(w->base);
    w->ev_wake = NULL;
    w->base = NULL;
    w->reaped = true;
}

/* Makes and starts a worker, in the slot of a retired one if there is one
 * (the slots stay: other threads may be looking at them); returns it or
 * NULL.  At start-up, or with wd.mu held. */
static struct worker *worker_spawn(void)
{
    unsigned int n = worker_count();
    struct worker *w = NULL;
    bool fresh;
    int rc;

    for (unsigned int i = 0; i < n && w == NULL; i++) {
        if (atomic_load(&workers[i]->life) == WORKER_GONE) {
            w = workers[i];
            if (!w->reaped) {
                worker_reap(w);
            }
        }
    }
    fresh = w == NULL;
    if (fresh) {
        if (n >= WORKERS_MAX || (w = calloc(1, sizeof(*w))) == NULL) {
            return NULL;
        }
        w->rep = malloc(sizeof(*w->rep));
        pthread_mutex_init(&w->own, NULL);
        pthread_mutex_init(&w->lock, NULL);
        g_queue_init(&w->incoming);
        g_queue_init(&w->done);
        w->conns = g_hash_table_new(NULL, NULL);
        atomic_init(&w->life, WORKER_GONE);
        if (w->rep == NULL) {
            goto fail;
        }
    }
    w->base = event_base_new();
    w->ev_wake = w->base != NULL ? event_new(w->base, -1, 0, worker_wake, w) : NULL;
    if (w->ev_wake == NULL) {
        goto fail;
    }
    w->reaped = false;
    w->retire = w->draining = w->parking = w->parked = false;
    atomic_store(&w->op_seq, 0);
    atomic_fetch_add(&running_workers, 1);
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        log_error("cannot start an I/O thread: %s", strerror(rc));
        atomic_fetch_sub(&running_workers, 1);
        goto fail;
    }
    atomic_store(&w->life, WORKER_LIVE);
    if (fresh) {
        workers[n] = w;
        atomic_store_explicit(&nworkers, n + 1, memory_order_release);
    }
    return w;
fail:
    if (w->ev_wake != NULL) {
        event_free(w->ev_wake);
        w->ev_wake = NULL;
    }
    if (w->base != NULL) {
        event_base_free(w->base);
        w->base = NULL;
    }
    w->reaped = true;
    if (fresh) {
        g_hash_table_destroy(w->conns);
        free(w->rep);
        free(w);
    }
    return NULL;
}

/* Queues h to w unless w has retired; false then. */
static bool queue_handoff(struct worker *w, struct handoff *h)
{
    pthread_mutex_lock(&w->lock);
    if (atomic_load(&w->life) == WORKER_GONE) {
        pthread_mutex_unlock(&w->lock);
        return false;
    }
    g_queue_push_tail(&w->incoming, h);
    pthread_mutex_unlock(&w->lock);
    event_active(w->ev_wake, 0, 0);
    return true;
}

/* ---- the watchdog ------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool worker_is_stuck(unsigned int i)
{
    return __atomic_load_n(&wd.seen[i].stuck, __ATOMIC_RELAXED);
}

/* The least loaded worker other than `not` that is not stuck; a new spare
 * one if there is none.  Called with wd.mu held. */
static bool worker_is_live(unsigned int i)
{
    return atomic_load(&workers[i]->life) == WORKER_LIVE;
}

static struct worker *healthy_worker(const struct worker *not)
{
    struct worker *best = NULL;
    unsigned int n = worker_count();

    for (unsigned int i = 0; i < n; i++) {
        if (workers[i] != not && worker_is_live(i) && !worker_is_stuck(i) &&
            (best == NULL || atomic_load(&workers[i]->load) < atomic_load(&best->load))) {
            best = workers[i];
        }
    }
    if (best == NULL) {
        best = worker_spawn();
        if (best != NULL) {
            log_info("I/O threads: started a spare");
        }
    }
    return best;
}

/* Moves every connection of the stuck worker w but its busy one to `to`.
 * Called with w->own held, so w's thread is inside the busy request. */
static unsigned int migrate(struct worker *w, struct worker *to)
{
    GList *all = g_hash_table_get_keys(w->conns);
    GQueue incoming;
    unsigned int moved = 0;

    for (GList *l = all; l != NULL; l = l->next) {
        struct conn *c = l->data;
        struct handoff *h;
        GList *jobs = NULL;

        if (c == w->busy || (h = calloc(1, sizeof(*h))) == NULL) {
            continue;
        }
        conn_detach(c);
        g_hash_table_remove(w->conns, c);
        atomic_fetch_sub(&w->load, 1);
        atomic_fetch_add(&to->load, 1);
        /* Under w->lock, so that a lane finishing now hands its job to
         * whichever worker it finds, and finds it again under its lock. */
        pthread_mutex_lock(&w->lock);
        conn_set_worker(c, to);
        for (GList *j = w->done.head; j != NULL;) {
            GList *next = j->next;

            if (((struct lane_job *)j->data)->conn == c) {
                jobs = g_list_append(jobs, j->data);
                g_queue_delete_link(&w->done, j);
            }
            j = next;
        }
        pthread_mutex_unlock(&w->lock);
        h->moved = c;
        pthread_mutex_lock(&to->lock);
        g_queue_push_tail(&to->incoming, h);
        for (GList *j = jobs; j != NULL; j = j->next) {
            g_queue_push_tail(&to->done, j->data);
        }
        pthread_mutex_unlock(&to->lock);
        g_list_free(jobs);
        moved++;
    }
    g_list_free(all);
    /* Connections accepted for w that it has not taken yet go too. */
    pthread_mutex_lock(&w->lock);
    incoming = w->incoming;
    g_queue_init(&w->incoming);
    pthread_mutex_unlock(&w->lock);
    for (struct handoff *h; (h = g_queue_pop_head(&incoming)) != NULL; moved++) {
        atomic_fetch_sub(&w->load, 1);
        atomic_fetch_add(&to->load, 1);
        pthread_mutex_lock(&to->lock);
        g_queue_push_tail(&to->incoming, h);
        pthread_mutex_unlock(&to->lock);
    }
    event_active(to->ev_wake, 0, 0);
    return moved;
}

/* Whether the stuck worker w holds connections other than its busy one. */
static bool worker_has_others(struct worker *w)
{
    bool incoming;

    pthread_mutex_lock(&w->lock);
    incoming = !g_queue_is_empty(&w->incoming);
    pthread_mutex_unlock(&w->lock);
    return incoming || g_hash_table_size(w->conns) > (w->busy != NULL ? 1u : 0u);
}

/* A spare with no connection for SPARE_IDLE_MS, while enough other workers
 * live, is asked to end (worker_try_retire decides, on its thread). */
static void watchdog_retire(unsigned int i, long long now)
{
    struct worker *w = workers[i];
    unsigned int live = 0, n = worker_count();

    for (unsigned int j = 0; j < n; j++) {
        live += atomic_load(&workers[j]->life) != WORKER_GONE;
    }
    if (!worker_is_live(i) || wd.parking || live <= wd.base_threads ||
        atomic_load(&w->load) != 0 || (atomic_load(&w->op_seq) & 1) != 0) {
        wd.seen[i].empty_since = 0;
        return;
    }
    if (wd.seen[i].empty_since == 0) {
        wd.seen[i].empty_since = now;
        return;
    }
    if (now - wd.seen[i].empty_since < SPARE_IDLE_MS) {
        return;
    }
    wd.seen[i].empty_since = 0;
    atomic_store(&w->life, WORKER_RETIRING);
    pthread_mutex_lock(&w->lock);
    w->retire = true;
    pthread_mutex_unlock(&w->lock);
    event_active(w->ev_wake, 0, 0);
}

static void watchdog_scan(void)
{
    long long now = now_ms();
    unsigned int stall = atomic_load(&io_stall_ms);
    unsigned int n = worker_count();

    for (unsigned int i = 0; i < n; i++) {
        struct worker *w = workers[i], *to;
        unsigned int seq = atomic_load(&w->op_seq);
        unsigned int moved;

        if (atomic_load(&w->life) == WORKER_GONE) {
            if (!w->reaped) {
                worker_reap(w);
            }
            continue;
        }
        watchdog_retire(i, now);
        if (seq != wd.seen[i].seq || (seq & 1) == 0) {
            if (wd.seen[i].stuck) {
                log_info("I/O thread %u: its request returned after %lld ms", i,
                         now - wd.seen[i].since_ms);
            }
            wd.seen[i].seq = seq;
            wd.seen[i].since_ms = now;
            __atomic_store_n(&wd.seen[i].stuck, false, __ATOMIC_RELAXED);
            continue;
        }
        if (now - wd.seen[i].since_ms < stall || wd.parking) {
            continue;
        }
        if (pthread_mutex_trylock(&w->own) != 0) {
            continue; /* it is back from its request this very moment */
        }
        if (atomic_load(&w->op_seq) == seq && worker_has_others(w)) {
            to = healthy_worker(w);
            if (to != NULL) {
                moved = migrate(w, to);
                log_warn("I/O thread %u: one request has run for %lld ms (a hung filesystem?); "
                         "moved its %u other connections to another thread",
                         i, now - wd.seen[i].since_ms, moved);
            } else if (!wd.seen[i].stuck) {
                log_error("I/O thread %u is stuck and no thread can take its connections "
                          "(%u I/O threads at most)",
                          i, WORKERS_MAX);
            }
        }
        __atomic_store_n(&wd.seen[i].stuck, true, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&w->own);
    }
}

static void *watchdog_main(void *arg)
{
    pthread_mutex_lock(&wd.mu);
    while (!wd.stop) {
        unsigned int half = atomic_load(&io_stall_ms) / 2;
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        half = half > 0 ? half : 1;
        until.tv_sec += half / 1000;
        until.tv_nsec += (long)(half % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd.wake, &wd.mu, &until);
        if (!wd.stop) {
            watchdog_scan();
        }
    }
    pthread_mutex_unlock(&wd.mu);
    return NULL;
}

/* ---- the rest of the process ---------------------------------------------- */

int workers_start(const struct worker_options *opt)
{
    int rc;

    conn_closed_event = opt->on_conn_closed;
    atomic_store(&frame_timeout_s, opt->frame_timeout_s);
    atomic_store(&output_timeout_s, opt->output_timeout_s);
    atomic_store(&io_stall_ms, opt->io_stall_ms > 0 ? opt->io_stall_ms : 100);
    wd.base_threads = opt->threads;
    for (unsigned int i = 0; i < opt->threads && i < WORKERS_MAX; i++) {
        if (worker_spawn() == NULL) {
            log_error("cannot start the I/O threads");
            return -ENOMEM;
        }
    }
    rc = pthread_create(&wd.thread, NULL, watchdog_main, NULL);
    if (rc != 0) {
        log_error("cannot start the watchdog thread: %s", strerror(rc));
        return -rc;
    }
    wd.started = true;
    return 0;
}

/* The least loaded live worker, preferring those not stuck in a request. */
static struct worker *least_loaded(void)
{
    unsigned int n = worker_count();
    struct worker *best = NULL;
    bool best_stuck = true;

    for (unsigned int i = 0; i < n; i++) {
        bool stuck = worker_is_stuck(i);

        if (atomic_load(&workers[i]->life) == WORKER_GONE) {
            continue;
        }
        if (best == NULL || (best_stuck && !stuck) ||
            (stuck == best_stuck &&
             atomic_load(&workers[i]->load) < atomic_load(&best->load))) {
            best = workers[i];
            best_stuck = stuck;
        }
    }
    return best;
}

static void assign(struct handoff *h)
{
    ops_export_ref(h->ex);
    atomic_fetch_add(&total_conns, 1);
    for (;;) {
        /* At least --threads workers never retire, so there is one. */
        struct worker *best = least_loaded();

        atomic_fetch_add(&best->load, 1);
        if (queue_handoff(best, h)) {
            return;
        }
        atomic_fetch_sub(&best->load, 1); /* it retired meanwhile */
    }
}

void workers_assign(int fd, struct export *ex, const struct ucred *peer, const char *socket)
{
    struct handoff *h = calloc(1, sizeof(*h));
    int slot = -1;

    if (h == NULL) {
        log_error("out of memory accepting a connection");
        close(fd);
        tally_remove(ex, peer->uid); /* the acceptor counted it */
        return;
    }
    slot = progress_slot_alloc();
    if (slot < 0) {
        log_error("peer pid %d: no progress slot left (%u in all); refusing the connection",
                  (int)peer->pid, progress_nslots());
        close(fd);
        tally_remove(ex, peer->uid);
        free(h);
        return;
    }
    /* Registered before a byte is read: from here on a crash of this
     * process does not lose the connection (under a supervisor). */
    registry_conn((unsigned int)slot, fd, socket, ex->dir, atomic_load(&ex->readonly),
                  atomic_load(&ex->allow_devices), atomic_load(&ex->policy) != NULL, peer->pid,
                  peer->uid);
    h->fd = fd;
    h->ex = ex;
    h->peer = *peer;
    h->slot = slot;
    assign(h);
}

void workers_adopt(const struct conn_handover *from)
{
    struct handoff *h = calloc(1, sizeof(*h));
    struct conn_handover *copy = g_new0(struct conn_handover, 1);

    if (h == NULL) {
        log_error("out of memory adopting a connection");
        close(from->fd);
        tally_remove(from->ex, from->peer_uid);
        for (size_t i = 0; i < from->n_out_fds; i++) {
            close(from->out_fds[i].fd);
        }
        g_free(copy);
        return;
    }
    *copy = *from;
    copy->pending = g_memdup2(from->pending, from->pending_len);
    copy->out = g_memdup2(from->out, from->out_len);
    copy->out_fds = g_memdup2(from->out_fds, from->n_out_fds * sizeof(*from->out_fds));
    h->fd = from->fd;
    h->ex = from->ex;
    h->peer = (struct ucred){.pid = from->peer_pid, .uid = from->peer_uid};
    /* Under a supervisor the slot is the one the old process used, in the
     * same table; without one, this process has a table of its own. */
    if (registry_active() && from->slot >= 0 && (unsigned int)from->slot < progress_nslots()) {
        h->slot = from->slot;
        progress_slot_claim((unsigned int)h->slot);
    } else {
        h->slot = progress_slot_alloc();
    }
    if (h->slot < 0) {
        log_error("out of progress slots adopting a connection");
        close(from->fd);
        tally_remove(from->ex, from->peer_uid);
        for (size_t i = 0; i < from->n_out_fds; i++) {
            close(from->out_fds[i].fd);
        }
        h->h = copy;
        handoff_free(h);
        return;
    }
    h->h = copy;
    assign(h);
}

/* Called with wd.mu held, so no worker retires meanwhile. */
static void request_parking(bool park)
{
    unsigned int n = worker_count();

    for (unsigned int i = 0; i < n; i++) {
        if (atomic_load(&workers[i]->life) == WORKER_GONE) {
            continue;
        }
        pthread_mutex_lock(&workers[i]->lock);
        workers[i]->park_request = park;
        pthread_mutex_unlock(&workers[i]->lock);
        event_active(workers[i]->ev_wake, 0, 0);
    }
}

void workers_park(struct event *done)
{
    pthread_mutex_lock(&wd.mu);
    wd.parking = true;
    parked_event = done;
    atomic_store(&unparked_workers, atomic_load(&running_workers));
    request_parking(true);
    pthread_mutex_unlock(&wd.mu);
}

void workers_unpark(void)
{
    pthread_mutex_lock(&wd.mu);
    request_parking(false);
    wd.parking = false;
    pthread_mutex_unlock(&wd.mu);
}

void workers_foreach_conn(void (*fn)(struct conn *c, void *arg), void *arg)
{
    unsigned int n = worker_count();

    for (unsigned int i = 0; i < n; i++) {
        GHashTableIter it;
        gpointer c;

        g_hash_table_iter_init(&it, workers[i]->conns);
        while (g_hash_table_iter_next(&it, &c, NULL)) {
            fn(c, arg);
        }
    }
}

void workers_set_frame_timeout(unsigned int seconds)
{
    atomic_store(&frame_timeout_s, seconds);
}

void workers_set_output_timeout(unsigned int seconds)
{
    atomic_store(&output_timeout_s, seconds);
}

void workers_set_io_stall_ms(unsigned int ms)
{
    atomic_store(&io_stall_ms, ms > 0 ? ms : 1);
}

unsigned int worker_frame_timeout(const struct worker *w)
{
    (void)w;
    return atomic_load(&frame_timeout_s);
}

unsigned int worker_output_timeout(const struct worker *w)
{
    (void)w;
    return atomic_load(&output_timeout_s);
}

unsigned int workers_count(void)
{
    return worker_count();
}

unsigned int workers_connections(void)
{
    return atomic_load(&total_conns);
}

void workers_stop(struct event *done)
{
    unsigned int n;

    pthread_mutex_lock(&wd.mu);
    wd.stop = true;
    pthread_cond_signal(&wd.wake);
    stopped_event = done;
    n = worker_count();
    for (unsigned int i = 0; i < n; i++) {
        if (atomic_load(&workers[i]->life) == WORKER_GONE) {
            continue;
        }
        pthread_mutex_lock(&workers[i]->lock);
        workers[i]->stopping = true;
        pthread_mutex_unlock(&workers[i]->lock);
        event_active(workers[i]->ev_wake, 0, 0);
    }
    pthread_mutex_unlock(&wd.mu);
    if (atomic_load(&running_workers) == 0) {
        event_active(done, 0, 0);
    }
}

void workers_join(void)
{
    unsigned int n = worker_count();

    if (wd.started) {
        pthread_join(wd.thread, NULL);
        wd.started = false;
    }
    for (unsigned int i = 0; i < n; i++) {
        if (atomic_load(&workers[i]->life) != WORKER_GONE) {
            pthread_join(workers[i]->thread, NULL);
        } else if (!workers[i]->reaped) {
            worker_reap(workers[i]);
        }
    }
}

void worker_complete(struct lane_job *job)
{
    for (;;) {
        struct worker *w = conn_worker(job->conn);

        pthread_mutex_lock(&w->lock);
        if (conn_worker(job->conn) == w) {
            g_queue_push_tail(&w->done, job);
            pthread_mutex_unlock(&w->lock);
            event_active(w->ev_wake, 0, 0);
            return;
        }
        pthread_mutex_unlock(&w->lock); /* moved meanwhile: follow it */
    }
}

void worker_conn_added(struct worker *w, struct conn *c)
{
    g_hash_table_add(w->conns, c);
}

void worker_conn_removed(struct worker *w, struct conn *c)
{
    g_hash_table_remove(w->conns, c);
    atomic_fetch_sub(&w->load, 1);
    atomic_fetch_sub(&total_conns, 1);
    event_active(conn_closed_event, 0, 0);
    worker_check_stopped(w);
    worker_check_parked(w);
}

void worker_conn_parked(struct worker *w)
{
    worker_check_parked(w);
}
