/* policy.c - an export's id and xattr maps applied to requests and replies
 * (policy.h). */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "policy.h"

/* The kernel's POSIX ACL xattr layout (include/uapi/linux/posix_acl_xattr.h):
 * a little-endian u32 version 2, then 8-byte entries {le16 tag, le16 perm,
 * le32 id}; only ACL_USER and ACL_GROUP entries carry an id. */
#define ACL_XATTR_VERSION 2u
#define ACL_HDR_SZ 4u
#define ACL_ENTRY_SZ 8u
#define ACL_TAG_USER 0x02u
#define ACL_TAG_GROUP 0x08u
#define ACL_ACCESS "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"

/* The id that creations ask for with (uint32_t)-1, "the daemon's own id"
 * under the reference helper: with a map it is the guest's root instead,
 * never the host's. */
#define GUEST_DEFAULT_ID 0u

struct policy *policy_new(struct idmap *uid, struct idmap *gid, struct xattrmap *xattr)
{
    struct policy *pol;

    if (uid == NULL && gid == NULL && xattr == NULL) {
        return NULL;
    }
    pol = g_new0(struct policy, 1);
    atomic_init(&pol->refs, 1);
    pol->uid = uid;
    pol->gid = gid;
    pol->xattr = xattr;
    return pol;
}

void policy_unref(struct policy *pol)
{
    if (pol != NULL && atomic_fetch_sub(&pol->refs, 1) == 1) {
        idmap_free(pol->uid);
        idmap_free(pol->gid);
        xattrmap_free(pol->xattr);
        g_free(pol->uid_text);
        g_free(pol->gid_text);
        g_free(pol->xattr_text);
        g_free(pol);
    }
}

struct policy *policy_get_slow(struct export *ex)
{
    struct policy *pol;

    /* The lock orders "load and take a reference" against policy_set's
     * "swap and drop the export's reference": without it the last
     * reference could go between the load and the increment. */
    pthread_mutex_lock(&ex->policy_lock);
    pol = atomic_load_explicit(&ex->policy, memory_order_relaxed);
    if (pol != NULL) {
        atomic_fetch_add(&pol->refs, 1);
    }
    pthread_mutex_unlock(&ex->policy_lock);
    return pol;
}

void policy_set(struct export *ex, struct policy *pol)
{
    struct policy *old;

    pthread_mutex_lock(&ex->policy_lock);
    old = atomic_load_explicit(&ex->policy, memory_order_relaxed);
    atomic_store_explicit(&ex->policy, pol, memory_order_release);
    pthread_mutex_unlock(&ex->policy_lock);
    policy_unref(old);
}

/* ---- ids -------------------------------------------------------------- */

static int id_in(const struct idmap *map, uint32_t *id, bool minus_one_keeps)
{
    if (map == NULL) {
        return 0;
    }
    if (*id == UINT32_MAX) {
        if (minus_one_keeps) {
            return 0; /* chown's "leave this id as it is" */
        }
        *id = GUEST_DEFAULT_ID;
    }
    return idmap_to_host(map, *id, id);
}

static bool is_acl_name(const char *name)
{
    return strcmp(name, ACL_ACCESS) == 0 || strcmp(name, ACL_DEFAULT) == 0;
}

/* The entries of a well-formed ACL value, or -1. */
static ssize_t acl_entries(const uint8_t *value, size_t len)
{
    uint32_t version;

    if (len < ACL_HDR_SZ || (len - ACL_HDR_SZ) % ACL_ENTRY_SZ != 0) {
        return -1;
    }
    memcpy(&version, value, sizeof(version));
    return le32toh(version) == ACL_XATTR_VERSION ? (ssize_t)((len - ACL_HDR_SZ) / ACL_ENTRY_SZ)
                                                 : -1;
}

/* The map an entry's id goes through, NULL for an entry without an id (or
 * a map not configured). */
static const struct idmap *acl_entry_map(const struct policy *pol, const uint8_t *entry)
{
    uint16_t tag;

    memcpy(&tag, entry, sizeof(tag));
    tag = le16toh(tag);
    return tag == ACL_TAG_USER ? pol->uid : tag == ACL_TAG_GROUP ? pol->gid : NULL;
}

int policy_acl_to_host(const struct policy *pol, uint8_t *value, size_t len)
{
    ssize_t n = acl_entries(value, len);

    /* Two passes: nothing is rewritten unless every id has a mapping. */
    for (int pass = 0; pass < 2; pass++) {
        for (ssize_t i = 0; i < n; i++) {
            uint8_t *e = value + ACL_HDR_SZ + (size_t)i * ACL_ENTRY_SZ;
            const struct idmap *map = acl_entry_map(pol, e);
            uint32_t id;

            if (map == NULL) {
                continue;
            }
            memcpy(&id, e + 4, sizeof(id));
            if (idmap_to_host(map, le32toh(id), &id) < 0) {
                return -EPERM; /* only ever in the first pass */
            }
            if (pass == 1) {
                id = htole32(id);
                memcpy(e + 4, &id, sizeof(id));
            }
        }
    }
    return 0;
}

void policy_acl_to_guest(const struct policy *pol, uint8_t *value, size_t len)
{
    ssize_t n = acl_entries(value, len);

    for (ssize_t i = 0; i < n; i++) {
        uint8_t *e = value + ACL_HDR_SZ + (size_t)i * ACL_ENTRY_SZ;
        const struct idmap *map = acl_entry_map(pol, e);
        uint32_t id;

        if (map != NULL) {
            memcpy(&id, e + 4, sizeof(id));
            id = htole32(idmap_to_guest(map, le32toh(id)));
            memcpy(e + 4, &id, sizeof(id));
        }
    }
}

/* ---- requests ----------------------------------------------------------- */

/* The guest's name at arg, replaced by its host name in pr->name.  hidden
 * is the answer for a hidden name (ENODATA to read or remove it, EPERM to
 * set it). */
static int name_in(const struct policy *pol, struct proto_req *req, int arg, int hidden,
                   struct policy_req *pr)
{
    const char *guest = req->a[arg].s.p;
    size_t len = req->a[arg].s.len;
    int ret;

    if (pol->xattr == NULL) {
        if (len < sizeof(pr->name)) {
            memcpy(pr->name, guest, len + 1); /* for the ACL test below */
        } else {
            pr->name[0] = '\0';
        }
        return 0;
    }
    /* The kernel's own first check (see ops.c): before any rule. */
    if (len == 0 || len > XATTR_NAME_MAX) {
        return -ERANGE;
    }
    ret = xattrmap_to_host(pol->xattr, guest, pr->name, sizeof(pr->name));
    if (ret == -ENODATA) {
        return hidden;
    }
    if (ret < 0) {
        return ret;
    }
    req->a[arg].s.p = pr->name;
    req->a[arg].s.len = (uint16_t)strlen(pr->name);
    return 0;
}

/* Creations: run as (and so create as) the mapped uid:gid. */
static int creds_in(const struct policy *pol, struct proto_req *req)
{
    const struct proto_op *op = proto_op(req->type);
    int ret = id_in(pol->uid, &req->a[op->uid_arg].d, false);

    return ret < 0 ? ret : id_in(pol->gid, &req->a[op->gid_arg].d, false);
}

int policy_request(const struct policy *pol, struct proto_req *req, struct policy_req *pr)
{
    int ret;

    pr->type = req->type;
    pr->acl_reply = false;
    pr->list_size = -1;
    switch (req->type) {
    case T_CREATE:
    case T_MKNOD:
    case T_MKDIR:
    case T_SYMLINK:
        return creds_in(pol, req);
    case T_CHOWN:
        ret = id_in(pol->uid, &req->a[1].d, true);
        return ret < 0 ? ret : id_in(pol->gid, &req->a[2].d, true);
    case T_LGETXATTR:
        ret = name_in(pol, req, 2, -ENODATA, pr);
        pr->acl_reply = ret == 0 && (int32_t)req->a[0].d > 0 && is_acl_name(pr->name);
        return ret;
    case T_LSETXATTR:
        ret = name_in(pol, req, 1, -EPERM, pr);
        if (ret == 0 && is_acl_name(pr->name)) {
            ret = policy_acl_to_host(pol, (uint8_t *)req->a[2].s.p, req->a[2].s.len);
        }
        return ret;
    case T_LREMOVEXATTR:
        return name_in(pol, req, 1, -ENODATA, pr);
    case T_LLISTXATTR:
        if (pol->xattr != NULL && (int32_t)req->a[0].d >= 0 &&
            req->a[0].d <= PROTO_MAX_STRING) {
            /* The guest's list is computed from the whole host list, so
             * that its size and ERANGE answer the rewritten list. */
            pr->list_size = (int32_t)req->a[0].d;
            req->a[0].d = PROTO_MAX_STRING;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- replies -------------------------------------------------------------- */

static bool reply_ok(const struct proto_reply *rep)
{
    uint32_t type;

    memcpy(&type, rep->buf, sizeof(type));
    return rep->len >= PROTO_HDR_SZ && type == T_SUCCESS;
}

static void stat_out(const struct policy *pol, struct proto_reply *rep)
{
    uint32_t id;

    if (!reply_ok(rep) || rep->len != PROTO_HDR_SZ + PROTO_STAT_SZ) {
        return;
    }
    if (pol->uid != NULL) {
        memcpy(&id, rep->buf + PROTO_STAT_UID_OFF, sizeof(id));
        id = idmap_to_guest(pol->uid, id);
        memcpy(rep->buf + PROTO_STAT_UID_OFF, &id, sizeof(id));
    }
    if (pol->gid != NULL) {
        memcpy(&id, rep->buf + PROTO_STAT_GID_OFF, sizeof(id));
        id = idmap_to_guest(pol->gid, id);
        memcpy(rep->buf + PROTO_STAT_GID_OFF, &id, sizeof(id));
    }
}

/* The host's whole list is in rep (policy_request asked for all of it);
 * the guest gets its view, measured against its own size. */
static void list_out(const struct policy *pol, const struct policy_req *pr,
                     struct proto_reply *rep)
{
    uint8_t *area = proto_reply_string_area(rep);
    g_autofree char *view = NULL;
    ssize_t n;

    if (!reply_ok(rep) || rep->len < PROTO_HDR_SZ + 2) {
        return; /* an error: the guest's as well */
    }
    view = g_malloc(PROTO_MAX_STRING);
    n = xattrmap_list_to_guest(pol->xattr, (const char *)area, rep->len - PROTO_HDR_SZ - 2,
                               view, PROTO_MAX_STRING);
    if (n < 0) {
        proto_reply_error(rep, REPLY_DATA, (int)n);
    } else if (pr->list_size == 0) {
        proto_reply_status(rep, (int32_t)n); /* the size probe */
    } else if (n > pr->list_size) {
        proto_reply_error(rep, REPLY_DATA, -ERANGE);
    } else {
        memcpy(area, view, (size_t)n);
        proto_reply_string_commit(rep, (size_t)n);
    }
}

void policy_reply(const struct policy *pol, const struct policy_req *pr, struct proto_reply *rep)
{
    switch (pr->type) {
    case T_LSTAT:
        stat_out(pol, rep);
        break;
    case T_LGETXATTR:
        if (pr->acl_reply && reply_ok(rep) && rep->len >= PROTO_HDR_SZ + 2) {
            policy_acl_to_guest(pol, proto_reply_string_area(rep), rep->len - PROTO_HDR_SZ - 2);
        }
        break;
    case T_LLISTXATTR:
        if (pol->xattr != NULL && pr->list_size >= 0) {
            list_out(pol, pr, rep);
        }
        break;
    default:
        break;
    }
}
