/* policy.h - one export's translation of what a guest sends and sees: its
 * id maps and its xattr name map (idmap.h, xattrmap.h).
 *
 * A policy is immutable and reference counted.  The export holds the
 * current one; a reload swaps in a new one, and a request in flight keeps
 * the one it started with (policy_get), so no request ever sees half of
 * an old map and half of a new one.  An export without maps holds NULL:
 * the whole layer is then one pointer test per request.
 *
 * Where it applies (conn.c, around ops_execute): on the way in, before the
 * lane identity is chosen, policy_request() rewrites the request's ids and
 * xattr names in place; on the way out, policy_reply() rewrites stat ids,
 * ACL values and xattr lists in the reply. */
#ifndef VP_POLICY_H
#define VP_POLICY_H

#include <linux/limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "idmap.h"
#include "ops.h"
#include "proto.h"
#include "xattrmap.h"

struct policy {
    atomic_int refs;
    struct idmap *uid;        /* NULL: uids pass through */
    struct idmap *gid;        /* NULL: gids pass through */
    struct xattrmap *xattr;   /* NULL: names pass through */
    /* The maps as configured (NULL: none), so that a live upgrade can hand
     * them on with a connection whose export a reload removed. */
    char *uid_text, *gid_text, *xattr_text;
};

/* A policy owning the maps given (any may be NULL; all NULL gives NULL:
 * no policy at all). */
struct policy *policy_new(struct idmap *uid, struct idmap *gid, struct xattrmap *xattr);
void policy_unref(struct policy *pol);

struct policy *policy_get_slow(struct export *ex);

/* The export's current policy with a reference for the caller, or NULL
 * (no maps: the caller does nothing more).  Inline, so that an export
 * without maps costs one pointer test per request. */
static inline struct policy *policy_get(struct export *ex)
{
    if (atomic_load_explicit(&ex->policy, memory_order_relaxed) == NULL) {
        return NULL;
    }
    return policy_get_slow(ex);
}
/* Makes pol (may be NULL; the export takes the caller's reference) the
 * export's policy for requests that start from now on. */
void policy_set(struct export *ex, struct policy *pol);

/* What policy_reply needs to know about the request it answers. */
struct policy_req {
    uint32_t type;
    int32_t list_size;  /* T_LLISTXATTR rewritten: the guest's size; else -1 */
    bool acl_reply;     /* T_LGETXATTR of a POSIX ACL: ids in the value */
    char name[XATTR_NAME_MAX + 1]; /* the host name the request now points to */
};

/* Rewrites req (a decoded request; its body is scratch) for the host:
 * uid/gid fields of creations and chown, the xattr name, an ACL value being
 * set.  req's name field may be made to point into pr->name, so pr must
 * live as long as req is used.  Returns 0, or the -errno to answer instead
 * (EPERM for an id or name without a mapping, ENODATA for a hidden name,
 * ERANGE for a name too long). */
int policy_request(const struct policy *pol, struct proto_req *req, struct policy_req *pr);
/* Rewrites the reply to a request policy_request let through for the
 * guest: stat ids, ACL ids, the xattr list (and its size-0 probe). */
void policy_reply(const struct policy *pol, const struct policy_req *pr, struct proto_reply *rep);

/* The ACL value translations, exposed for the unit tests: each id of an
 * ACL_USER / ACL_GROUP entry through the maps.  A value that is no ACL the
 * kernel would take is left alone (the kernel answers EINVAL for it).
 * to_host returns 0 or -EPERM (an id without a mapping, value unchanged). */
int policy_acl_to_host(const struct policy *pol, uint8_t *value, size_t len);
void policy_acl_to_guest(const struct policy *pol, uint8_t *value, size_t len);

#endif
