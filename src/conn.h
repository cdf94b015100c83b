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

/* Both run on the connection's worker thread.  conn_new takes over one
 * reference to ex, which the connection drops when it ends. */
struct conn *conn_new(struct worker *w, int fd, struct export *ex, const struct ucred *peer);
/* A lane finished the connection's request: send its reply, go on. */
void conn_lane_done(struct lane_job *job);
/* Shutdown: take no new request; close once the current one is answered. */
void conn_drain(struct conn *c);

/* Live upgrade, on the connection's worker thread.  conn_park asks the
 * connection to stop between two requests (worker_conn_parked tells when);
 * conn_unpark lets it go on if the upgrade fails. */
void conn_park(struct conn *c);
bool conn_parked(const struct conn *c);
void conn_unpark(struct conn *c);

/* What the new process needs to carry a parked connection on. */
struct conn_handover {
    int fd;
    struct export *ex;
    pid_t peer_pid;
    uid_t peer_uid;
    const uint8_t *pending; /* received, not yet answered */
    size_t pending_len;
};
void conn_describe(const struct conn *c, struct conn_handover *h);
/* The new process: input the old one had received, to be answered first. */
void conn_set_pending(struct conn *c, const uint8_t *data, size_t len);

#endif
