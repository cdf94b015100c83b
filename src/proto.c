/* proto.c - encode and decode proxy frames (PROTOCOL.md §2-§4). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "proto.h"

#define CREDS PROTO_GUEST_CREDS
#define BLOCKS PROTO_MAY_BLOCK
#define MUTATES PROTO_MUTATES
#define NO_IDS 0, 0 /* runs as the daemon: no uid:gid fields */

/* One row per request type (PROTOCOL.md §4.0): name, body, reply kind,
 * flags, and for the four creations the argument indices of the guest's uid
 * and gid.  Rows that may block are the ones that open the object for I/O or
 * truncate it: only open(2) and truncate(2) wait for an F_SETLEASE lease
 * (see ops.c).  T_OPEN has no MUTATES: a read-only export refuses it by its
 * flags, in its handler. */
static const struct proto_op proto_ops[T_NTYPES] = {
    [T_OPEN] = {"open", "sd", REPLY_FD, BLOCKS, NO_IDS},
    [T_CREATE] = {"create", "sdddd", REPLY_FD, CREDS | BLOCKS | MUTATES, 3, 4},
    [T_MKNOD] = {"mknod", "ddsdq", REPLY_STATUS, CREDS | MUTATES, 0, 1},
    [T_MKDIR] = {"mkdir", "ddsd", REPLY_STATUS, CREDS | MUTATES, 0, 1},
    [T_SYMLINK] = {"symlink", "ddss", REPLY_STATUS, CREDS | MUTATES, 0, 1},
    [T_LINK] = {"link", "ss", REPLY_STATUS, MUTATES, NO_IDS},
    [T_LSTAT] = {"lstat", "s", REPLY_DATA, 0, NO_IDS},
    [T_READLINK] = {"readlink", "sd", REPLY_DATA, 0, NO_IDS},
    [T_STATFS] = {"statfs", "s", REPLY_DATA, 0, NO_IDS},
    [T_CHMOD] = {"chmod", "sd", REPLY_STATUS, MUTATES, NO_IDS},
    [T_CHOWN] = {"chown", "sdd", REPLY_STATUS, MUTATES, NO_IDS}, /* uid:gid are the new owner */
    [T_TRUNCATE] = {"truncate", "sq", REPLY_STATUS, BLOCKS | MUTATES, NO_IDS},
    [T_UTIME] = {"utime", "sqqqq", REPLY_STATUS, MUTATES, NO_IDS},
    [T_RENAME] = {"rename", "ss", REPLY_STATUS, MUTATES, NO_IDS},
    [T_REMOVE] = {"remove", "s", REPLY_STATUS, MUTATES, NO_IDS},
    [T_LGETXATTR] = {"lgetxattr", "dss", REPLY_DATA, 0, NO_IDS},
    [T_LLISTXATTR] = {"llistxattr", "ds", REPLY_DATA, 0, NO_IDS},
    [T_LSETXATTR] = {"lsetxattr", "ssvdd", REPLY_STATUS, MUTATES, NO_IDS},
    [T_LREMOVEXATTR] = {"lremovexattr", "ss", REPLY_STATUS, MUTATES, NO_IDS},
    [T_GETVERSION] = {"getversion", "s", REPLY_DATA, BLOCKS, NO_IDS},
};

#undef CREDS
#undef BLOCKS
#undef MUTATES
#undef NO_IDS

const struct proto_op *proto_op(uint32_t type)
{
    return type < T_NTYPES && proto_ops[type].name != NULL ? &proto_ops[type] : NULL;
}

bool proto_identity(const struct proto_req *req, uid_t *uid, gid_t *gid)
{
    const struct proto_op *op = proto_op(req->type);

    if (op == NULL || !(op->flags & PROTO_GUEST_CREDS)) {
        return false;
    }
    *uid = (uid_t)req->a[op->uid_arg].d;
    *gid = (gid_t)req->a[op->gid_arg].d;
    return true;
}

const char *proto_body_format(uint32_t type)
{
    const struct proto_op *op = proto_op(type);

    return op != NULL ? op->format : NULL;
}

const char *proto_type_name(uint32_t type)
{
    const struct proto_op *op = proto_op(type);

    return op != NULL ? op->name : "unknown";
}

enum proto_reply_kind proto_reply_kind(uint32_t type)
{
    const struct proto_op *op = proto_op(type);

    return op != NULL ? op->reply : REPLY_STATUS;
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}

int proto_decode_header(const uint8_t *p, struct proto_hdr *hdr)
{
    hdr->type = get_u32(p);
    hdr->size = get_u32(p + 4);
    if (proto_body_format(hdr->type) == NULL) {
        return -EPROTO;
    }
    if (hdr->size > PROTO_MAX_BODY) {
        return -EMSGSIZE;
    }
    return 0;
}

/* Takes the `s` field at body[*off]: its length prefix and bytes must lie
 * within the body.  Returns the bytes' length, or -EINVAL. */
static int take_string(const uint8_t *body, size_t len, size_t *off)
{
    uint16_t slen;

    if (len - *off < 2) {
        return -EINVAL;
    }
    memcpy(&slen, body + *off, sizeof(slen));
    if (len - *off - 2 < slen) {
        return -EINVAL;
    }
    *off += 2u + slen;
    return slen;
}

/* Turns the string at body[*off] into a C string in place: the bytes move
 * two places down over their length prefix and the terminator follows them,
 * still inside the space the field occupied. */
static int decode_string(uint8_t *body, size_t len, size_t *off, union proto_arg *arg)
{
    uint8_t *dst = body + *off;
    int slen = take_string(body, len, off);

    if (slen < 0) {
        return slen;
    }
    memmove(dst, dst + 2, (size_t)slen);
    if (slen > 0 && dst[slen - 1] == '\0') {
        slen--;
    }
    if (memchr(dst, '\0', (size_t)slen) != NULL) {
        return -EINVAL;
    }
    dst[slen] = '\0';
    arg->s.p = (char *)dst;
    arg->s.len = (uint16_t)slen;
    return 0;
}

int proto_decode_body(uint32_t type, uint8_t *body, size_t len, struct proto_req *req)
{
    const char *fmt = proto_body_format(type);
    size_t off = 0;
    int i = 0;

    if (fmt == NULL || len > PROTO_MAX_BODY) {
        return -EINVAL;
    }
    memset(req, 0, sizeof(*req));
    req->type = type;
    for (; *fmt != '\0'; fmt++, i++) {
        switch (*fmt) {
        case 'd':
            if (len - off < 4) {
                return -EINVAL;
            }
            req->a[i].d = get_u32(body + off);
            off += 4;
            break;
        case 'q':
            if (len - off < 8) {
                return -EINVAL;
            }
            req->a[i].q = get_u64(body + off);
            off += 8;
            break;
        case 'v': { /* binary value: an `s` field left as it is */
            size_t start = off;
            int vlen = take_string(body, len, &off);

            if (vlen < 0) {
                return vlen;
            }
            req->a[i].s.p = (char *)body + start + 2;
            req->a[i].s.len = (uint16_t)vlen;
            break;
        }
        default: {
            int ret = decode_string(body, len, &off, &req->a[i]);

            if (ret < 0) {
                return ret;
            }
            break;
        }
        }
    }
    return off == len ? 0 : -EINVAL;
}

static void put_header(struct proto_reply *rep, uint32_t type, uint32_t size)
{
    put_u32(rep->buf, type);
    put_u32(rep->buf + 4, size);
    rep->len = PROTO_HDR_SZ + size;
    rep->fd = -1;
}

void proto_reply_status(struct proto_reply *rep, int32_t status)
{
    put_header(rep, status < 0 ? T_ERROR : T_SUCCESS, 4);
    put_u32(rep->buf + PROTO_HDR_SZ, (uint32_t)status);
}

void proto_reply_error(struct proto_reply *rep, enum proto_reply_kind kind, int err)
{
    if (err >= 0) {
        err = -EIO; /* an error reply must never read as success */
    }
    if (kind == REPLY_FD) {
        put_u32(rep->buf, (uint32_t)err);
        rep->len = 4;
        rep->fd = -1;
        return;
    }
    proto_reply_status(rep, err);
}

void proto_reply_fd(struct proto_reply *rep, int fd)
{
    put_u32(rep->buf, PROTO_FD_VALID);
    rep->len = 4;
    rep->fd = fd;
}

void proto_reply_stat(struct proto_reply *rep, const struct stat *st)
{
    uint8_t *p = rep->buf + PROTO_HDR_SZ;
    const uint64_t head[] = {st->st_dev, st->st_ino, st->st_nlink};
    const uint32_t ids[] = {st->st_mode, st->st_uid, st->st_gid};
    const uint64_t tail[] = {
        st->st_rdev,
        (uint64_t)st->st_size,
        (uint64_t)st->st_blksize,
        (uint64_t)st->st_blocks,
        (uint64_t)st->st_atim.tv_sec,
        (uint64_t)st->st_atim.tv_nsec,
        (uint64_t)st->st_mtim.tv_sec,
        (uint64_t)st->st_mtim.tv_nsec,
        (uint64_t)st->st_ctim.tv_sec,
        (uint64_t)st->st_ctim.tv_nsec,
    };

    put_header(rep, T_SUCCESS, PROTO_STAT_SZ);
    for (size_t i = 0; i < 3; i++, p += 8) {
        put_u64(p, head[i]);
    }
    for (size_t i = 0; i < 3; i++, p += 4) {
        put_u32(p, ids[i]);
    }
    for (size_t i = 0; i < 10; i++, p += 8) {
        put_u64(p, tail[i]);
    }
}

void proto_reply_statfs(struct proto_reply *rep, const struct statfs *sfs)
{
    uint8_t *p = rep->buf + PROTO_HDR_SZ;
    /* Each 32-bit half of f_fsid travels in its own u64, sign-extended from
     * the int it is: the bytes the reference helper really sends (observed
     * on the Debian 7.2 binary; PROTOCOL.md §4.1 says zero-extended, which
     * differs for negative halves).  QEMU keeps only the upper 32 bits of
     * the second one (§5.4 C3), so the guest sees what the old helper gave. */
    const uint64_t v[] = {
        (uint64_t)sfs->f_type,
        (uint64_t)sfs->f_bsize,
        sfs->f_blocks,
        sfs->f_bfree,
        sfs->f_bavail,
        sfs->f_files,
        sfs->f_ffree,
        (uint64_t)(int64_t)sfs->f_fsid.__val[0],
        (uint64_t)(int64_t)sfs->f_fsid.__val[1],
        (uint64_t)sfs->f_namelen,
        (uint64_t)sfs->f_frsize,
    };

    put_header(rep, T_SUCCESS, PROTO_STATFS_SZ);
    for (size_t i = 0; i < 11; i++, p += 8) {
        put_u64(p, v[i]);
    }
}

void proto_reply_u64(struct proto_reply *rep, uint64_t v)
{
    put_header(rep, T_SUCCESS, 8);
    put_u64(rep->buf + PROTO_HDR_SZ, v);
}

uint8_t *proto_reply_string_area(struct proto_reply *rep)
{
    return rep->buf + PROTO_HDR_SZ + 2;
}

void proto_reply_string_commit(struct proto_reply *rep, size_t len)
{
    uint16_t slen = (uint16_t)len;

    if (len > PROTO_MAX_STRING) {
        proto_reply_status(rep, -ENOBUFS);
        return;
    }
    put_header(rep, T_SUCCESS, 2u + (uint32_t)len);
    memcpy(rep->buf + PROTO_HDR_SZ, &slen, sizeof(slen));
}
