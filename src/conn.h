/* conn.h - one QEMU connection: framing, strict ordering, output queue. */
#ifndef VP_CONN_H
#define VP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct worker;
struct export;
struct lane_job;
struct conn_handover;

/* Bounds on what one connection may hold, whatever its peer does.  QEMU
 * has one request in flight, so it never comes near any of them. */
#define CONN_MAX_FDS 16                /* descriptors queued or unread by the peer */
/* Queued reply bytes before input waits: none, so that a connection has at
 * most one reply unwritten, the one a crash must finish (progress.h). */
#define CONN_OUT_HIGH 0
#define CONN_MAX_IDENTITIES 256        /* distinct uid:gid a connection creates as */

/* Both run on the connection's worker thread.  conn_new takes over one
 * reference to ex, which the connection drops when it ends; slot is its
 * progress slot (progress.h); h, if not NULL, what a previous process had
 * (a live upgrade, or a crash), to carry on from. */
struct conn *conn_new(struct worker *w, int fd, struct export *ex, const struct ucred *peer,
                      int slot, const struct conn_handover *h);
/* Shutdown: take no new request; close once the current one is answered. */
void conn_drain(struct conn *c);

/* A lane finished the connection's request (any thread): hands the job
 * back to the worker that owns the connection now.  The connection
 * registers this as the job's completion callback. */
void conn_job_finished(struct lane_job *job);
/* On the owning worker's thread: send the job's reply, go on. */
void conn_lane_done(struct lane_job *job);
/* The worker the connection belongs to at this moment (any thread). */
struct worker *conn_worker(const struct conn *c);

/* Moving a connection to another I/O thread (worker.c's watchdog, while
 * the old thread is held inside another connection's request).  detach
 * drops its events from the old thread's loop; attach, on the new thread,
 * makes them again and carries on where it was. */
void conn_detach(struct conn *c);
void conn_set_worker(struct conn *c, struct worker *w);
void conn_attach(struct conn *c);

/* Live upgrade, on the connection's worker thread.  conn_park asks the
 * connection to stop between two requests (worker_conn_parked tells when);
 * conn_unpark lets it go on if the upgrade fails.  A connection parks with
 * replies still queued: they travel with it. */
void conn_park(struct conn *c);
bool conn_parked(const struct conn *c);
void conn_unpark(struct conn *c);

/* What the new process needs to carry a parked connection on. */
struct conn_outfd {
    size_t off; /* the descriptor rides on byte out[off] */
    int fd;
};
struct conn_handover {
    int fd;
    struct export *ex;
    pid_t peer_pid;
    uid_t peer_uid;
    const uint8_t *pending; /* received, not yet answered */
    size_t pending_len;
    uint8_t *out; /* replies queued, not yet written */
    size_t out_len;
    struct conn_outfd *out_fds;
    size_t n_out_fds;
    int slot;           /* progress slot, or -1 */
    uint32_t answering; /* socket bytes of the request whose reply is in out */
    uint32_t reply_type, reply_len, reply_off; /* that reply */
    bool recover;       /* after a crash: the slot says what was done */
};
/* Fills h; out and out_fds are allocated (conn_handover_clear frees them,
 * not the descriptors, which stay the connection's).  conn_new takes h in
 * the new process: the input the old one had received is answered first,
 * the output it had not written is written first; it takes the descriptors
 * in out_fds. */
void conn_describe(const struct conn *c, struct conn_handover *h);
void conn_handover_clear(struct conn_handover *h);

#endif
