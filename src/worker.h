/* worker.h - I/O threads.
 *
 * Each worker thread runs its own event loop over the connections assigned
 * to it, reads their frames, and executes requests that need no credential
 * switch right there: one wake-up per request, as with the reference helper.
 * Requests that must run as another uid:gid, or that would sleep in the
 * kernel, go to a lane (lanes.h) and come back through worker_complete().
 *
 * A request can still sleep in the kernel on an I/O thread (a hung NFS or
 * FUSE mount under an export).  A watchdog thread notices a worker that has
 * been inside one request for longer than io-stall-ms and moves every other
 * connection of that worker to a healthy one (starting a spare worker if
 * none is), so one guest's stuck request holds only that guest.
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
struct conn_handover;

struct worker_options {
    unsigned int threads;
    unsigned int frame_timeout_s;  /* a frame that stays half-received */
    unsigned int output_timeout_s; /* replies that stay unread */
    unsigned int io_stall_ms;      /* a request that holds its thread */
    struct event *on_conn_closed;  /* activated whenever a connection ends */
};

/* A worker's life: spares started for stuck workers end again once idle. */
enum worker_life { WORKER_LIVE, WORKER_RETIRING, WORKER_GONE };

/* Thread-owned resources a connection borrows while its thread runs it. */
struct worker {
    struct event_base *base;
    struct proto_reply *rep; /* (input goes to each connection's progress slot) */

    pthread_t thread;
    struct event *ev_wake;
    /* Held by the worker thread except while it runs a request's system
     * calls: whoever holds it may move the worker's idle connections. */
    pthread_mutex_t own;
    atomic_uint op_seq;  /* odd while inside a request */
    struct conn *busy;   /* the connection whose request runs */
    pthread_mutex_t lock; /* protects the hand-off queues and stopping */
    GQueue incoming;      /* struct handoff: accepted or moved, not yet taken */
    GQueue done;          /* struct lane_job: back from a lane */
    bool stopping;
    bool retire;         /* the watchdog asks this idle spare to end */
    bool park_request;   /* an upgrade wants every connection parked */
    bool draining;       /* worker thread only, like everything below */
    bool parking;        /* park_request as this thread has applied it */
    bool parked;         /* all its connections are parked */
    GHashTable *conns;   /* set of this thread's struct conn */
    atomic_uint load;    /* connections assigned, read by the acceptor */
    atomic_int life;     /* enum worker_life; GONE only under the watchdog's lock */
    bool reaped;         /* GONE and joined, its loop freed (watchdog's lock) */
};

/* I/O threads at most, spares for stuck ones included. */
#define WORKERS_MAX 64

int workers_start(const struct worker_options *opt);
/* Hands an accepted connection to the least loaded healthy worker.  Takes
 * fd; the connection takes a reference to ex.  Under a supervisor, the
 * connection is registered with it first (socket: where it was accepted,
 * NULL for -f's). */
void workers_assign(int fd, struct export *ex, const struct ucred *peer, const char *socket);
/* Reload: apply to what starts afterwards. */
void workers_set_frame_timeout(unsigned int seconds);
void workers_set_output_timeout(unsigned int seconds);
void workers_set_io_stall_ms(unsigned int ms);
unsigned int workers_connections(void);
/* I/O threads started so far (spares included). */
unsigned int workers_count(void);
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
/* The new process: carries on a connection the old one parked, starting
 * with the output it had queued and the input it had received.  Takes h->fd
 * and every descriptor of h->out_fds. */
void workers_adopt(const struct conn_handover *h);

/* Called by a lane thread: returns a finished job to the worker that owns
 * its connection now. */
void worker_complete(struct lane_job *job);

/* Called by conn.c on its worker's thread. */
void worker_conn_added(struct worker *w, struct conn *c);
void worker_conn_removed(struct worker *w, struct conn *c);
void worker_conn_parked(struct worker *w);
unsigned int worker_frame_timeout(const struct worker *w);
unsigned int worker_output_timeout(const struct worker *w);

/* Around the system calls of a request run on the worker's own thread: the
 * window in which the watchdog may take the worker's other connections. */
static inline void worker_op_begin(struct worker *w, struct conn *c)
{
    w->busy = c;
    atomic_store_explicit(&w->op_seq, atomic_load_explicit(&w->op_seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    pthread_mutex_unlock(&w->own);
}

static inline void worker_op_end(struct worker *w)
{
    pthread_mutex_lock(&w->own);
    atomic_store_explicit(&w->op_seq, atomic_load_explicit(&w->op_seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    w->busy = NULL;
}

#endif
