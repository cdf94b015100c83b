/* lanes.h - credential lanes: thread pools bound to one uid:gid each.
 *
 * Lanes know nothing of connections or workers: a job carries its request
 * and a completion callback, and comes back through that callback. */
#ifndef VP_LANES_H
#define VP_LANES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

struct conn;
struct event;
struct export;
struct worker;

/* A request travelling to a lane and its reply travelling back.  Lanes run
 * creations and blocking retries (open, create, truncate, getversion), whose
 * replies are a status, an fd or a 64-bit value: at most 16 bytes. */
struct lane_job {
    struct lane_job *next; /* the lane's queue */
    /* Set by the submitter, read by the lane: */
    const struct export *ex;
    uid_t uid; /* the identity to run as: its lane's threads are */
    gid_t gid; /* uid:gid with nothing more than caps_enter_lane grants */
    /* Run as the daemon itself (uid and gid must be 0): a request that may
     * sleep in the kernel, off the I/O thread.  Such jobs have a lane of
     * their own, so they never hold up guests' 0:0 creations. */
    bool may_block;
    struct proto_req req; /* strings point into body */
    uint8_t *body;
    /* Called on the lane thread once reply, reply_len and reply_fd hold the
     * answer.  It must only hand the job back to its owner (it runs with
     * the guest's credentials, and must not call into lanes). */
    void (*done)(struct lane_job *job);
    /* The reply, written by the lane: */
    uint8_t reply[PROTO_HDR_SZ + 8];
    size_t reply_len;
    int reply_fd;
    /* The owner's; lanes never touch them. */
    struct conn *conn;
    struct worker *worker;
};

/* max_threads bounds all lane threads together; idle threads exit after
 * idle_seconds.  respawn is activated (from a lane thread) when a thread
 * exits: its callback must call lanes_respawn() on a thread that still has
 * the daemon's full credentials (new threads inherit their creator's). */
void lanes_init(unsigned max_threads, unsigned idle_seconds, struct event *respawn);
/* A new bound on all lane threads (reload).  Over it, idle threads give way
 * at once and busy ones once their lane has no work left. */
void lanes_set_max_threads(unsigned max_threads);

/* Queues job on the lane for job->uid:gid (and may_block), creating the lane
 * or a thread for it as needed; when every thread slot is taken, an idle
 * thread of another lane is told to exit and its slot comes to this lane.
 * Must be called from a thread with the daemon's credentials.  The finished
 * job is handed to job->done(). */
void lanes_submit(struct lane_job *job);
/* Joins exited threads and gives free slots to lanes waiting for one. */
void lanes_respawn(void);
/* Shutdown: lets every lane finish its queue, then waits (bounded) for its
 * threads to exit.  Returns 0, or -ETIMEDOUT if some are still busy. */
int lanes_stop(unsigned int timeout_s);
void lane_job_free(struct lane_job *job);

#endif
