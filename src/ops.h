/* ops.h - the host side of each request, confined to one export. */
#ifndef VP_OPS_H
#define VP_OPS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "proto.h"

struct policy;

struct export {
    char *dir;   /* as configured, for messages */
    int root_fd; /* O_PATH directory; every path resolves beneath it */
    /* Options a reload may change while requests run. */
    atomic_bool allow_devices;
    atomic_bool readonly;
    /* Id and xattr maps (policy.h), NULL without any: read with
     * policy_get, replaced with policy_set under policy_lock. */
    struct policy *_Atomic policy;
    pthread_mutex_t policy_lock;
    /* Held by its owner and by each connection, so that an export removed
     * by a reload lives on until its last guest has gone. */
    atomic_int refs;
};

/* Opens the export root into ex, with one reference for the caller.  The
 * directory itself must not be a symlink, as with the reference helper.
 * Returns 0 or -errno, with a message logged. */
int ops_export_open(struct export *ex, const char *dir);
void ops_export_close(struct export *ex);
/* The same, for an export on the heap: freed by its last unref. */
struct export *ops_export_new(const char *dir);
void ops_export_ref(struct export *ex);
void ops_export_unref(struct export *ex);

/* Per-process set-up, after daemonizing: remembers the daemon's identity,
 * opens /proc/self/fd, through which checked O_PATH descriptors are reopened,
 * and checks that every request type of proto.c has a handler here and
 * every handler a request type (-EINVAL, logged, if not). */
int ops_init(void);

/* Whether req must run on a credential lane, and as whom: derived from the
 * request's row (proto_identity).  Creations run as the request's uid:gid
 * (-1 = the daemon's own id); when that is the daemon's own identity they
 * need no lane. */
bool ops_lane_identity(const struct proto_req *req, uid_t *uid, gid_t *gid);

#ifdef VP_TEST_HOOKS
/* T_OPEN/T_CREATE answered by the direct directory open (ops.c, fast
 * paths): the tests check it is taken when, and only when, it may be. */
extern atomic_ulong ops_test_direct_opens;
/* The direct calls (fchmodat2, the *xattrat calls, ftruncate on the write
 * gate) instead of the /proc/self/fd paths: how many answered, and a switch
 * that forces the /proc way, as on a kernel without them. */
extern atomic_ulong ops_test_direct_calls;
extern atomic_bool ops_test_no_direct_calls;
/* chmod of a name in the export root answered by one fchmodat2 (ops.c). */
extern atomic_ulong ops_test_direct_chmods;
#endif

#define OPS_NONBLOCK 1u /* on an I/O thread: never wait for a lease break */

/* Performs req and encodes exactly one reply of the request's kind in rep;
 * a REPLY_FD success leaves the descriptor in rep->fd for the caller.
 * Returns 0, or -EWOULDBLOCK (only with OPS_NONBLOCK, only for a type whose
 * row has PROTO_MAY_BLOCK) when the request would sleep on a lease break:
 * then nothing was changed and nothing answered (rep->len 0, rep->fd -1),
 * and the caller runs it again without OPS_NONBLOCK off the I/O thread,
 * with the same identity.  req, and the body its strings point into, are
 * never modified, so the same req can be run again. */
int ops_execute(const struct export *ex, const struct proto_req *req, struct proto_reply *rep,
                unsigned int flags);

#endif
