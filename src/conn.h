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

/* What the new process needs to carry a parked connection on.  A parked
 * connection may have replies queued that its peer has not read yet: they
 * travel too (bytes, and each fd on the byte it rides on), so a peer that
 * never reads cannot hold an upgrade back. */
struct conn_outfd {
    size_t off; /* the fd rides on byte out[off] */
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
    struct conn_outfd *out_fds; /* ascending off, each < out_len */
    size_t n_out_fds;
};
/* Allocates h->out and h->out_fds; the descriptors stay the connection's. */
void conn_describe(const struct conn *c, struct conn_handover *h);
/* Frees what conn_describe allocated; closes no descriptor. */
void conn_handover_clear(struct conn_handover *h);
/* The new process: input the old one had received, to be answered first. */
void conn_set_pending(struct conn *c, const uint8_t *data, size_t len);
/* The new process: output the old one had queued, written before any reply
 * of this process.  Takes every fd in fds. */
void conn_adopt_output(struct conn *c, const uint8_t *out, size_t len,
                       const struct conn_outfd *fds, size_t n_fds);

#endif
