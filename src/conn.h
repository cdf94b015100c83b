/* conn.h - one QEMU connection: framing, strict ordering, output queue. */
#ifndef VP_CONN_H
#define VP_CONN_H

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

#endif
