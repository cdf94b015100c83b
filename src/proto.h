/* proto.h - the QEMU 9p proxy wire format (PROTOCOL.md), pure encode/decode.
 *
 * Nothing here does I/O or touches the filesystem: this is the layer that is
 * unit tested and fuzzed.  All integers are host byte order, fields are packed.
 */
#ifndef VP_PROTO_H
#define VP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>

#define PROTO_HDR_SZ 8u
#define PROTO_MAX_BODY 65536u
#define PROTO_MAX_FRAME (PROTO_HDR_SZ + PROTO_MAX_BODY)
#define PROTO_FD_VALID 0x7fffffff
#define PROTO_STAT_SZ 116u
#define PROTO_STATFS_SZ 88u
#define PROTO_MAX_ARGS 5
/* Where a stat reply (PROTOCOL.md §4.1: dev, ino, nlink as u64, then mode,
 * uid, gid as u32) keeps the owner's ids, from the frame's first byte. */
#define PROTO_STAT_UID_OFF (PROTO_HDR_SZ + 3 * 8 + 4)
#define PROTO_STAT_GID_OFF (PROTO_STAT_UID_OFF + 4)

enum proto_type {
    T_SUCCESS = 0,
    T_ERROR = 1,
    T_OPEN = 2,
    T_CREATE,
    T_MKNOD,
    T_MKDIR,
    T_SYMLINK,
    T_LINK,
    T_LSTAT,
    T_READLINK,
    T_STATFS,
    T_CHMOD,
    T_CHOWN,
    T_TRUNCATE,
    T_UTIME,
    T_RENAME,
    T_REMOVE,
    T_LGETXATTR,
    T_LLISTXATTR,
    T_LSETXATTR,
    T_LREMOVEXATTR,
    T_GETVERSION,
    T_NTYPES
};

/* How a request is answered (PROTOCOL.md §3.6). */
enum proto_reply_kind {
    REPLY_FD,     /* bare int + SCM_RIGHTS fd, no header */
    REPLY_STATUS, /* {T_SUCCESS|T_ERROR, 4, int} */
    REPLY_DATA,   /* {T_SUCCESS, n, payload} or {T_ERROR, 4, -errno} */
};

struct proto_hdr {
    uint32_t type;
    uint32_t size;
};

/* One decoded field.  Strings point into the request body, rewritten in
 * place as NUL-terminated C strings (see proto_decode_body). */
union proto_arg {
    uint32_t d;
    uint64_t q;
    struct {
        char *p;
        uint16_t len;
    } s;
};

struct proto_req {
    uint32_t type;
    union proto_arg a[PROTO_MAX_ARGS];
};

/* Flags of a request type (struct proto_op):
 * PROTO_GUEST_CREDS  runs as the guest's uid:gid, read from the 'd' fields at
 *                    uid_arg and gid_arg; everything else runs as the daemon;
 * PROTO_MAY_BLOCK    may sleep on a lease break (ops_execute answers
 *                    -EWOULDBLOCK under OPS_NONBLOCK): the caller keeps its own
 *                    copy of the body so that it can run the request again;
 * PROTO_MUTATES      refused with EROFS on a read-only export. */
#define PROTO_GUEST_CREDS (1u << 0)
#define PROTO_MAY_BLOCK (1u << 1)
#define PROTO_MUTATES (1u << 2)

/* Everything the daemon knows about one request type, in one row: conn.c,
 * the lanes and ops.c all read it, and nothing else decides which identity
 * runs a request.  (The handler of each type is in ops.c, which keeps this
 * layer free of I/O; ops_init() checks that both tables cover the same
 * types.) */
struct proto_op {
    const char *name;
    /* Body layout in marshaller letters ("sdddd").  'v' is an `s` field
     * holding binary data (an xattr value): neither NUL-checked nor
     * terminated. */
    const char *format;
    enum proto_reply_kind reply;
    unsigned int flags; /* PROTO_* above */
    uint8_t uid_arg;    /* with PROTO_GUEST_CREDS: where uid and gid are */
    uint8_t gid_arg;
};

/* The row of a request type, or NULL for a type that is no request
 * (T_SUCCESS, T_ERROR, anything from T_NTYPES on). */
const struct proto_op *proto_op(uint32_t type);

/* Whether req runs with the guest's credentials (PROTO_GUEST_CREDS); if so,
 * its uid:gid are stored, exactly as sent: (uint32_t)-1 stays -1, and what
 * it means is the caller's decision. */
bool proto_identity(const struct proto_req *req, uid_t *uid, gid_t *gid);

/* Shorthands for fields of the row; for a type that is no request they
 * answer NULL, "unknown" and REPLY_STATUS. */
const char *proto_body_format(uint32_t type);
const char *proto_type_name(uint32_t type);
enum proto_reply_kind proto_reply_kind(uint32_t type);

/* Reads the 8-byte header at p.  Returns 0, or -EPROTO for a type that is no
 * request and -EMSGSIZE for a body over PROTO_MAX_BODY: both mean the stream
 * cannot be followed any further. */
int proto_decode_header(const uint8_t *p, struct proto_hdr *hdr);

/* Decodes body[0..len) of a request of the given type into req.  Strings are
 * made C strings in place: each string's 2-byte length prefix makes room for
 * the terminator, so the body is modified and must not be decoded twice.
 * One trailing NUL counted in a string's length is dropped (QEMU's V9fsPath
 * fields carry it).  Returns 0 or -EINVAL (truncated field, trailing bytes,
 * embedded NUL). */
int proto_decode_body(uint32_t type, uint8_t *body, size_t len, struct proto_req *req);

/* Encoded replies.  A reply never exceeds PROTO_MAX_FRAME bytes. */
struct proto_reply {
    size_t len;
    int fd; /* REPLY_FD success: the descriptor to pass, else -1 */
    uint8_t buf[PROTO_MAX_FRAME];
};

void proto_reply_status(struct proto_reply *rep, int32_t status);
void proto_reply_error(struct proto_reply *rep, enum proto_reply_kind kind, int err);
void proto_reply_fd(struct proto_reply *rep, int fd);
void proto_reply_stat(struct proto_reply *rep, const struct stat *st);
void proto_reply_statfs(struct proto_reply *rep, const struct statfs *sfs);
void proto_reply_u64(struct proto_reply *rep, uint64_t v);
/* Data reply carrying one `s` field, built in place: the caller writes up to
 * PROTO_MAX_STRING bytes at proto_reply_string_area() and commits them. */
#define PROTO_MAX_STRING (PROTO_MAX_BODY - 2u)
uint8_t *proto_reply_string_area(struct proto_reply *rep);
void proto_reply_string_commit(struct proto_reply *rep, size_t len);

#endif
