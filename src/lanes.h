/* lanes.h - credential lanes: thread pools bound to one uid:gid each. */
#ifndef VP_LANES_H
#define VP_LANES_H

#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

struct conn;
struct worker;
struct export;

/* A request travelling to a lane and its reply travelling back.  Lanes only
 * run creations and retries of open, create, truncate and getversion, whose
 * replies are a status, an fd or a generation: at most 16 bytes. */
struct lane_job {
    struct lane_job *next;
    struct conn *conn;     /* owner; only touched on its worker's thread */
    struct worker *worker; /* where the finished job goes back to */
    const struct export *ex;
    uid_t uid;
    gid_t gid;
    struct proto_req req; /* strings point into body */
    uint8_t *body;
    uint8_t reply[PROTO_HDR_SZ + 8]; /* a status, an fd reply or a generation */
    size_t reply_len;
    int reply_fd;
};

/* max_threads bounds all lane threads together; idle threads exit after
 * idle_seconds.  respawn is activated (from a lane thread) when a lane waits
 * for a thread slot: its callback must call lanes_respawn() on a thread that
 * still has the daemon's full credentials. */
void lanes_init(unsigned max_threads, unsigned idle_seconds, struct event *respawn);

/* Queues job on the lane for job->uid:gid, creating the lane or a thread for
 * it as needed.  Must be called from a thread with the daemon's credentials.
 * The finished job is handed to worker_complete(). */
void lanes_submit(struct lane_job *job);
void lanes_respawn(void);
/* Shutdown: lets every lane finish its queue, then waits (bounded) for its
 * threads to exit.  Returns 0, or -ETIMEDOUT if some are still busy. */
int lanes_stop(unsigned int timeout_s);
void lane_job_free(struct lane_job *job);

#endif
