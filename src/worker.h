/* worker.h - I/O threads.
 *
 * Each worker thread runs its own event loop over the connections assigned
 * to it, reads their frames, and executes requests that need no credential
 * switch right there: one wake-up per request, as with the reference helper.
 * Requests that must run as another uid:gid go to a lane (lanes.h) and come
 * back through worker_complete().
 */
#ifndef VP_WORKER_H
#define VP_WORKER_H

#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "proto.h"

struct event_base;
struct event;
struct export;
struct lane_job;
struct conn;

struct worker_options {
    unsigned int threads;
    unsigned int frame_timeout_s; /* a frame that stays half-received */
    struct event *on_conn_closed; /* activated whenever a connection ends */
};

/* Thread-owned resources a connection borrows while its thread runs it. */
struct worker {
    struct event_base *base;
    uint8_t *rbuf; /* receive buffer, WORKER_RBUF_SIZE bytes */
    struct proto_reply *rep;
    atomic_uint frame_timeout_s;

    pthread_t thread;
    struct event *ev_wake;
    pthread_mutex_t lock; /* protects the hand-off queues and stopping */
    GQueue incoming;      /* struct handoff: accepted, not yet adopted */
    GQueue done;          /* struct lane_job: back from a lane */
    bool stopping;
    bool park_request;   /* an upgrade wants every connection parked */
    bool draining;       /* worker thread only, like everything below */
    bool parking;        /* park_request as this thread has applied it */
    bool parked;         /* all its connections are parked */
    GHashTable *conns;   /* set of this thread's struct conn */
    atomic_uint load;    /* connections assigned, read by the acceptor */
};

#define WORKER_RBUF_SIZE (2 * PROTO_MAX_FRAME)

int workers_start(const struct worker_options *opt);
/* Hands an accepted connection to the least loaded worker.  Takes fd; the
 * connection takes a reference to ex. */
void workers_assign(int fd, struct export *ex, const struct ucred *peer);
/* Reload: applies to connections' next incomplete frame. */
void workers_set_frame_timeout(unsigned int seconds);
unsigned int workers_connections(void);
/* Asks every worker to finish what it has started, flush, close its
 * connections and stop; activates done once all have stopped. */
void workers_stop(struct event *done);
void workers_join(void);

/* Live upgrade (main thread).  workers_park asks every connection to stop
 * between two requests and activates done once all have; workers_unpark
 * lets them go on.  While parked, the main thread may walk the connections. */
void workers_park(struct event *done);
void workers_unpark(void);
void workers_foreach_conn(void (*fn)(struct conn *c, void *arg), void *arg);
/* The new process: carries on a connection the old one parked, writing
 * first the output it had queued, then answering the input it had
 * received.  Takes h->fd and every fd in h->out_fds; the connection takes
 * a reference to h->ex. */
struct conn_handover;
void workers_adopt(const struct conn_handover *h);

/* Called by a lane thread: returns a finished job to its worker. */
void worker_complete(struct lane_job *job);

/* Called by conn.c on its worker's thread. */
void worker_conn_added(struct worker *w, struct conn *c);
void worker_conn_removed(struct worker *w, struct conn *c);
void worker_conn_parked(struct worker *w);

#endif
