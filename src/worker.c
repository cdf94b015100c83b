/* worker.c - I/O threads and the queues between them and the rest.
 *
 * Hand-offs in both directions (new connections from the acceptor, finished
 * jobs from lanes) go through a mutex-protected queue plus event_active() on
 * the worker's wake event: one wake-up, no polling.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "lanes.h"
#include "log.h"
#include "ops.h"
#include "worker.h"

struct handoff {
    int fd;
    struct export *ex; /* a reference, passed on to the connection */
    struct ucred peer;
    uint8_t *out; /* output queued by a previous process (malloc) */
    size_t out_len;
    struct conn_outfd *out_fds; /* fds riding on it, owned (malloc) */
    size_t n_out_fds;
    size_t pending_len; /* input received by a previous process */
    uint8_t pending[];
};

static struct worker *workers;
static unsigned int nworkers;
static atomic_uint total_conns;
static atomic_uint running_workers;
static struct event *conn_closed_event;
static struct event *stopped_event;
static struct event *parked_event;
static atomic_uint unparked_workers;

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
    free(h->out);
    free(h->out_fds);
    free(h);
}

static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    GQueue incoming, done;
    bool stopping, parking;

    pthread_mutex_lock(&w->lock);
    incoming = w->incoming;
    done = w->done;
    g_queue_init(&w->incoming);
    g_queue_init(&w->done);
    stopping = w->stopping;
    parking = w->park_request;
    pthread_mutex_unlock(&w->lock);

    for (struct handoff *h; (h = g_queue_pop_head(&incoming)) != NULL; handoff_free(h)) {
        struct conn *c = stopping ? NULL : conn_new(w, h->fd, h->ex, &h->peer);

        if (c == NULL) {
            close(h->fd);
            for (size_t i = 0; i < h->n_out_fds; i++) {
                close(h->out_fds[i].fd);
            }
            ops_export_unref(h->ex);
            atomic_fetch_sub(&w->load, 1);
            atomic_fetch_sub(&total_conns, 1);
            event_active(conn_closed_event, 0, 0);
            continue;
        }
        if (h->out_len > 0) {
            conn_adopt_output(c, h->out, h->out_len, h->out_fds, h->n_out_fds);
        }
        conn_set_pending(c, h->pending, h->pending_len);
        if (w->parking) {
            conn_park(c);
        }
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
    worker_check_stopped(w);
    worker_check_parked(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    if (atomic_fetch_sub(&running_workers, 1) == 1 && stopped_event != NULL) {
        event_active(stopped_event, 0, 0);
    }
    return NULL;
}

int workers_start(const struct worker_options *opt)
{
    nworkers = opt->threads;
    conn_closed_event = opt->on_conn_closed;
    workers = calloc(nworkers, sizeof(*workers));
    if (workers == NULL) {
        return -ENOMEM;
    }
    for (unsigned int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        int rc;

        w->base = event_base_new();
        w->rbuf = malloc(WORKER_RBUF_SIZE);
        w->rep = malloc(sizeof(*w->rep));
        if (w->base == NULL || w->rbuf == NULL || w->rep == NULL) {
            return -ENOMEM;
        }
        atomic_init(&w->frame_timeout_s, opt->frame_timeout_s);
        w->ev_wake = event_new(w->base, -1, 0, worker_wake, w);
        pthread_mutex_init(&w->lock, NULL);
        g_queue_init(&w->incoming);
        g_queue_init(&w->done);
        w->conns = g_hash_table_new(NULL, NULL);
        atomic_fetch_add(&running_workers, 1);
        rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            log_error("cannot start worker thread: %s", strerror(rc));
            return -rc;
        }
    }
    return 0;
}

static struct handoff *handoff_new(int fd, struct export *ex, const struct ucred *peer,
                                   const uint8_t *pending, size_t pending_len)
{
    struct handoff *h = calloc(1, sizeof(*h) + pending_len);

    if (h == NULL) {
        return NULL;
    }
    h->fd = fd;
    h->ex = ex;
    h->peer = *peer;
    h->pending_len = pending_len;
    if (pending_len > 0) {
        memcpy(h->pending, pending, pending_len);
    }
    return h;
}

/* Queues h on the least loaded worker. */
static void assign(struct handoff *h)
{
    struct worker *best = &workers[0];

    for (unsigned int i = 1; i < nworkers; i++) {
        if (atomic_load(&workers[i].load) < atomic_load(&best->load)) {
            best = &workers[i];
        }
    }
    ops_export_ref(h->ex);
    atomic_fetch_add(&best->load, 1);
    atomic_fetch_add(&total_conns, 1);
    pthread_mutex_lock(&best->lock);
    g_queue_push_tail(&best->incoming, h);
    pthread_mutex_unlock(&best->lock);
    event_active(best->ev_wake, 0, 0);
}

void workers_assign(int fd, struct export *ex, const struct ucred *peer)
{
    struct handoff *h = handoff_new(fd, ex, peer, NULL, 0);

    if (h == NULL) {
        log_error("out of memory accepting a connection");
        close(fd);
        return;
    }
    assign(h);
}

void workers_adopt(const struct conn_handover *ho)
{
    struct ucred peer = {.pid = ho->peer_pid, .uid = ho->peer_uid};
    struct handoff *h = handoff_new(ho->fd, ho->ex, &peer, ho->pending, ho->pending_len);

    if (h != NULL && ho->out_len > 0) {
        h->out = malloc(ho->out_len);
        h->out_fds = malloc((ho->n_out_fds > 0 ? ho->n_out_fds : 1) * sizeof(*h->out_fds));
        if (h->out == NULL || h->out_fds == NULL) {
            handoff_free(h);
            h = NULL;
        } else {
            memcpy(h->out, ho->out, ho->out_len);
            h->out_len = ho->out_len;
            memcpy(h->out_fds, ho->out_fds, ho->n_out_fds * sizeof(*h->out_fds));
            h->n_out_fds = ho->n_out_fds;
        }
    }
    if (h == NULL) {
        log_error("out of memory adopting a connection");
        close(ho->fd);
        for (size_t i = 0; i < ho->n_out_fds; i++) {
            close(ho->out_fds[i].fd);
        }
        return;
    }
    assign(h);
}

static void request_parking(bool park)
{
    for (unsigned int i = 0; i < nworkers; i++) {
        pthread_mutex_lock(&workers[i].lock);
        workers[i].park_request = park;
        pthread_mutex_unlock(&workers[i].lock);
        event_active(workers[i].ev_wake, 0, 0);
    }
}

void workers_park(struct event *done)
{
    parked_event = done;
    atomic_store(&unparked_workers, nworkers);
    request_parking(true);
}

void workers_unpark(void)
{
    request_parking(false);
}

void workers_foreach_conn(void (*fn)(struct conn *c, void *arg), void *arg)
{
    for (unsigned int i = 0; i < nworkers; i++) {
        GHashTableIter it;
        gpointer c;

        g_hash_table_iter_init(&it, workers[i].conns);
        while (g_hash_table_iter_next(&it, &c, NULL)) {
            fn(c, arg);
        }
    }
}

void workers_set_frame_timeout(unsigned int seconds)
{
    for (unsigned int i = 0; i < nworkers; i++) {
        atomic_store(&workers[i].frame_timeout_s, seconds);
    }
}

unsigned int workers_connections(void)
{
    return atomic_load(&total_conns);
}

void workers_stop(struct event *done)
{
    stopped_event = done;
    for (unsigned int i = 0; i < nworkers; i++) {
        pthread_mutex_lock(&workers[i].lock);
        workers[i].stopping = true;
        pthread_mutex_unlock(&workers[i].lock);
        event_active(workers[i].ev_wake, 0, 0);
    }
    if (atomic_load(&running_workers) == 0) {
        event_active(done, 0, 0);
    }
}

void workers_join(void)
{
    for (unsigned int i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
    }
}

void worker_complete(struct lane_job *job)
{
    struct worker *w = job->worker;

    pthread_mutex_lock(&w->lock);
    g_queue_push_tail(&w->done, job);
    pthread_mutex_unlock(&w->lock);
    event_active(w->ev_wake, 0, 0);
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
