/* test-proto.c - the wire format, byte for byte (PROTOCOL.md §2-§4, §11). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>

#include "proto.h"

/* ---- a tiny independent encoder for request bodies ---- */

struct body {
    uint8_t b[PROTO_MAX_BODY + 64];
    size_t len;
};

static void put(struct body *b, const void *p, size_t n)
{
    g_assert_cmpuint(b->len + n, <=, sizeof(b->b));
    memcpy(b->b + b->len, p, n);
    b->len += n;
}

static void put_d(struct body *b, uint32_t v)
{
    put(b, &v, 4);
}

static void put_q(struct body *b, uint64_t v)
{
    put(b, &v, 8);
}

static void put_s(struct body *b, const void *s, uint16_t n)
{
    put(b, &n, 2);
    put(b, s, n);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const char *hex)
{
    g_autofree char *text = NULL;
    GString *s = g_string_new(NULL);

    for (size_t i = 0; i < got_len; i++) {
        g_string_append_printf(s, i ? " %02x" : "%02x", got[i]);
    }
    text = g_string_free(s, FALSE);
    g_assert_cmpstr(text, ==, hex);
}

/* ---- headers ---- */

static void test_header(void)
{
    uint8_t h[8];
    struct proto_hdr hdr;
    uint32_t v;

    v = T_LSTAT;
    memcpy(h, &v, 4);
    v = PROTO_MAX_BODY;
    memcpy(h + 4, &v, 4);
    g_assert_cmpint(proto_decode_header(h, &hdr), ==, 0);
    g_assert_cmpuint(hdr.type, ==, T_LSTAT);
    g_assert_cmpuint(hdr.size, ==, 65536);

    v = PROTO_MAX_BODY + 1;
    memcpy(h + 4, &v, 4);
    g_assert_cmpint(proto_decode_header(h, &hdr), ==, -EMSGSIZE);
    v = 0xffffffff;
    memcpy(h + 4, &v, 4);
    g_assert_cmpint(proto_decode_header(h, &hdr), ==, -EMSGSIZE);

    const uint32_t bad_types[] = {T_SUCCESS, T_ERROR, T_NTYPES, 0xffffffff};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_types); i++) {
        memcpy(h, &bad_types[i], 4);
        v = 4;
        memcpy(h + 4, &v, 4);
        g_assert_cmpint(proto_decode_header(h, &hdr), ==, -EPROTO);
    }
    for (uint32_t t = T_OPEN; t < T_NTYPES; t++) {
        memcpy(h, &t, 4);
        g_assert_cmpint(proto_decode_header(h, &hdr), ==, 0);
        g_assert_nonnull(proto_body_format(t));
    }
}

/* ---- the example frames of PROTOCOL.md §11 ---- */

static void test_example_requests(void)
{
    /* T_LSTAT "/" as QEMU sends it at start: 08 00 00 00 04 00 00 00 02 00 2f 00 */
    uint8_t lstat_frame[] = {0x08, 0, 0, 0, 0x04, 0, 0, 0, 0x02, 0, 0x2f, 0x00};
    uint8_t open_frame[] = {0x02, 0, 0, 0, 0x0d, 0, 0, 0, 0x07, 0, 0x2f, 0x2f, 0x66,
                            0x69, 0x6c, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00};
    uint8_t mkdir_frame[] = {0x05, 0, 0, 0, 0x12, 0, 0, 0, 0, 0, 0, 0, 0,   0,   0,
                             0,    4, 0, 0x2f, 0x2f, 0x7a, 0x7a, 0xed, 0x41, 0, 0};
    struct proto_hdr hdr;
    struct proto_req req;

    g_assert_cmpint(proto_decode_header(lstat_frame, &hdr), ==, 0);
    g_assert_cmpuint(hdr.size, ==, 4);
    g_assert_cmpint(proto_decode_body(hdr.type, lstat_frame + 8, hdr.size, &req), ==, 0);
    g_assert_cmpstr(req.a[0].s.p, ==, "/"); /* the trailing NUL is dropped */
    g_assert_cmpuint(req.a[0].s.len, ==, 1);

    g_assert_cmpint(proto_decode_header(open_frame, &hdr), ==, 0);
    g_assert_cmpuint(hdr.type, ==, T_OPEN);
    g_assert_cmpint(proto_decode_body(hdr.type, open_frame + 8, hdr.size, &req), ==, 0);
    g_assert_cmpstr(req.a[0].s.p, ==, "//file");
    g_assert_cmpuint(req.a[1].d, ==, O_RDONLY);

    g_assert_cmpint(proto_decode_header(mkdir_frame, &hdr), ==, 0);
    g_assert_cmpuint(hdr.size, ==, 18);
    g_assert_cmpint(proto_decode_body(hdr.type, mkdir_frame + 8, hdr.size, &req), ==, 0);
    g_assert_cmpuint(req.a[0].d, ==, 0);
    g_assert_cmpuint(req.a[1].d, ==, 0);
    g_assert_cmpstr(req.a[2].s.p, ==, "//zz");
    g_assert_cmpuint(req.a[3].d, ==, 040755);
}

static void test_example_replies(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct stat st = {0};

    proto_reply_status(rep, 0);
    assert_bytes(rep->buf, rep->len, "00 00 00 00 04 00 00 00 00 00 00 00");
    proto_reply_error(rep, REPLY_STATUS, -EPERM);
    assert_bytes(rep->buf, rep->len, "01 00 00 00 04 00 00 00 ff ff ff ff");
    proto_reply_error(rep, REPLY_DATA, -ENOENT);
    assert_bytes(rep->buf, rep->len, "01 00 00 00 04 00 00 00 fe ff ff ff");
    proto_reply_error(rep, REPLY_FD, -ENOENT);
    assert_bytes(rep->buf, rep->len, "fe ff ff ff");
    g_assert_cmpint(rep->fd, ==, -1);
    proto_reply_fd(rep, 42);
    assert_bytes(rep->buf, rep->len, "ff ff ff 7f");
    g_assert_cmpint(rep->fd, ==, 42);

    memcpy(proto_reply_string_area(rep), "file", 4);
    proto_reply_string_commit(rep, 4);
    assert_bytes(rep->buf, rep->len, "00 00 00 00 06 00 00 00 04 00 66 69 6c 65");
    g_assert_cmpint(rep->fd, ==, -1);

    /* xattr probe: 6 bytes needed */
    proto_reply_status(rep, 6);
    assert_bytes(rep->buf, rep->len, "00 00 00 00 04 00 00 00 06 00 00 00");

    /* an "error" that is not negative must still read as an error */
    proto_reply_error(rep, REPLY_FD, 0);
    g_assert_cmpint(*(int32_t *)rep->buf, <, 0);

    st.st_mode = 0100644;
    proto_reply_stat(rep, &st);
    g_assert_cmpuint(rep->len, ==, 8 + 116);
}

static void test_stat_layout(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct stat st = {
        .st_dev = 0x0102030405060708ull,
        .st_ino = 11,
        .st_nlink = 12,
        .st_mode = 040755,
        .st_uid = 1000,
        .st_gid = 0xfffffffe,
        .st_rdev = 259,
        .st_size = 4096,
        .st_blksize = 512,
        .st_blocks = 8,
        .st_atim = {.tv_sec = -5, .tv_nsec = 6},
        .st_mtim = {.tv_sec = 7, .tv_nsec = 8},
        .st_ctim = {.tv_sec = 9, .tv_nsec = 999999999},
    };
    const uint8_t *p;
    uint64_t q;
    uint32_t d;

    proto_reply_stat(rep, &st);
    p = rep->buf + 8;
    g_assert_cmpuint(rep->len - 8, ==, PROTO_STAT_SZ);
#define Q(off) (memcpy(&q, p + (off), 8), q)
#define D(off) (memcpy(&d, p + (off), 4), d)
    g_assert_cmphex(Q(0), ==, 0x0102030405060708ull);
    g_assert_cmpuint(Q(8), ==, 11);
    g_assert_cmpuint(Q(16), ==, 12);
    g_assert_cmpuint(D(24), ==, 040755);
    g_assert_cmpuint(D(28), ==, 1000);
    g_assert_cmphex(D(32), ==, 0xfffffffe);
    g_assert_cmpuint(Q(36), ==, 259);
    g_assert_cmpuint(Q(44), ==, 4096);
    g_assert_cmpuint(Q(52), ==, 512);
    g_assert_cmpuint(Q(60), ==, 8);
    g_assert_cmpint((int64_t)Q(68), ==, -5);
    g_assert_cmpuint(Q(76), ==, 6);
    g_assert_cmpuint(Q(84), ==, 7);
    g_assert_cmpuint(Q(92), ==, 8);
    g_assert_cmpuint(Q(100), ==, 9);
    g_assert_cmpuint(Q(108), ==, 999999999);
}

static void test_statfs_layout(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    struct statfs sfs = {
        .f_type = 0xEF53,
        .f_bsize = 4096,
        .f_blocks = 100,
        .f_bfree = 50,
        .f_bavail = 40,
        .f_files = 1000,
        .f_ffree = 900,
        .f_namelen = 255,
        .f_frsize = 4096,
    };
    uint64_t v[11];

    sfs.f_fsid.__val[0] = (int)0x9abcdef0;
    sfs.f_fsid.__val[1] = 0x13b7f7b9;
    proto_reply_statfs(rep, &sfs);
    g_assert_cmpuint(rep->len - 8, ==, PROTO_STATFS_SZ);
    memcpy(v, rep->buf + 8, sizeof(v));
    g_assert_cmphex(v[0], ==, 0xEF53);
    g_assert_cmpuint(v[1], ==, 4096);
    g_assert_cmpuint(v[6], ==, 900);
    /* each fsid half sign-extended into its own u64, as the reference
     * binary sends it */
    g_assert_cmphex(v[7], ==, 0xffffffff9abcdef0ull);
    g_assert_cmphex(v[8], ==, 0x13b7f7b9);
    g_assert_cmpuint(v[9], ==, 255);
    g_assert_cmpuint(v[10], ==, 4096);
}

static void test_u64_reply(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);

    proto_reply_u64(rep, 0x46781997u);
    assert_bytes(rep->buf, rep->len, "00 00 00 00 08 00 00 00 97 19 78 46 00 00 00 00");
}

static void test_string_limits(void)
{
    g_autofree struct proto_reply *rep = g_new0(struct proto_reply, 1);
    int32_t status;

    memset(proto_reply_string_area(rep), 'x', PROTO_MAX_STRING);
    proto_reply_string_commit(rep, PROTO_MAX_STRING);
    g_assert_cmpuint(rep->len, ==, PROTO_MAX_FRAME);
    proto_reply_string_commit(rep, PROTO_MAX_STRING + 1);
    memcpy(&status, rep->buf + 8, 4);
    g_assert_cmpint(status, ==, -ENOBUFS);
    g_assert_cmpuint(rep->len, ==, 12);
}

/* ---- every request type decodes a well-formed body ---- */

static void build_body(uint32_t type, struct body *b)
{
    const char *fmt = proto_body_format(type);

    b->len = 0;
    for (int i = 0; fmt[i] != '\0'; i++) {
        switch (fmt[i]) {
        case 'd':
            put_d(b, 0x11111111u * (uint32_t)(i + 1));
            break;
        case 'q':
            put_q(b, 0x0101010101010101ull * (uint64_t)(i + 1));
            break;
        case 'v':
            put_s(b, "v\0al", 4);
            break;
        default: {
            char s[16];

            g_snprintf(s, sizeof(s), "//arg%d", i);
            put_s(b, s, (uint16_t)strlen(s));
        }
        }
    }
}

static void test_all_types(void)
{
    for (uint32_t t = T_OPEN; t < T_NTYPES; t++) {
        const char *fmt = proto_body_format(t);
        struct body b;
        struct proto_req req;

        build_body(t, &b);
        g_assert_cmpint(proto_decode_body(t, b.b, b.len, &req), ==, 0);
        g_assert_cmpuint(req.type, ==, t);
        for (int i = 0; fmt[i] != '\0'; i++) {
            char s[16];

            switch (fmt[i]) {
            case 'd':
                g_assert_cmphex(req.a[i].d, ==, 0x11111111u * (uint32_t)(i + 1));
                break;
            case 'q':
                g_assert_cmphex(req.a[i].q, ==, 0x0101010101010101ull * (uint64_t)(i + 1));
                break;
            case 'v':
                g_assert_cmpuint(req.a[i].s.len, ==, 4);
                g_assert_cmpmem(req.a[i].s.p, 4, "v\0al", 4);
                break;
            default:
                g_snprintf(s, sizeof(s), "//arg%d", i);
                g_assert_cmpstr(req.a[i].s.p, ==, s);
            }
        }
        /* one byte short and one byte long are both refused */
        build_body(t, &b);
        g_assert_cmpint(proto_decode_body(t, b.b, b.len - 1, &req), ==, -EINVAL);
        build_body(t, &b);
        b.b[b.len++] = 0;
        g_assert_cmpint(proto_decode_body(t, b.b, b.len, &req), ==, -EINVAL);
        g_assert_cmpint(proto_decode_body(t, b.b, 0, &req), ==, -EINVAL);
    }
}

static void test_malformed_strings(void)
{
    struct body b;
    struct proto_req req;
    uint16_t too_long = 100;

    /* embedded NUL */
    b.len = 0;
    put_s(&b, "/fi\0le", 6);
    g_assert_cmpint(proto_decode_body(T_LSTAT, b.b, b.len, &req), ==, -EINVAL);
    /* two trailing NULs: only one may be dropped */
    b.len = 0;
    put_s(&b, "/f\0\0", 4);
    g_assert_cmpint(proto_decode_body(T_LSTAT, b.b, b.len, &req), ==, -EINVAL);
    /* a length beyond the body */
    b.len = 0;
    put(&b, &too_long, 2);
    put(&b, "abc", 3);
    g_assert_cmpint(proto_decode_body(T_LSTAT, b.b, b.len, &req), ==, -EINVAL);
    /* a length prefix cut in half */
    g_assert_cmpint(proto_decode_body(T_LSTAT, b.b, 1, &req), ==, -EINVAL);
    /* the empty string, and "\0" alone, both decode to "" */
    b.len = 0;
    put_s(&b, "", 0);
    g_assert_cmpint(proto_decode_body(T_LSTAT, b.b, b.len, &req), ==, 0);
    g_assert_cmpstr(req.a[0].s.p, ==, "");
    b.len = 0;
    put_s(&b, "\0", 1);
    g_assert_cmpint(proto_decode_body(T_LSTAT, b.b, b.len, &req), ==, 0);
    g_assert_cmpstr(req.a[0].s.p, ==, "");
    /* the longest string a body can hold */
    b.len = 0;
    {
        g_autofree char *big = g_malloc(PROTO_MAX_BODY - 2);

        memset(big, 'a', PROTO_MAX_BODY - 2);
        put_s(&b, big, (uint16_t)(PROTO_MAX_BODY - 2));
    }
    g_assert_cmpint(proto_decode_body(T_LSTAT, b.b, b.len, &req), ==, 0);
    g_assert_cmpuint(strlen(req.a[0].s.p), ==, PROTO_MAX_BODY - 2);
    /* not a request type */
    g_assert_cmpint(proto_decode_body(T_ERROR, b.b, b.len, &req), ==, -EINVAL);
}

static void test_reply_kinds(void)
{
    g_assert_cmpint(proto_reply_kind(T_OPEN), ==, REPLY_FD);
    g_assert_cmpint(proto_reply_kind(T_CREATE), ==, REPLY_FD);
    g_assert_cmpint(proto_reply_kind(T_LSTAT), ==, REPLY_DATA);
    g_assert_cmpint(proto_reply_kind(T_READLINK), ==, REPLY_DATA);
    g_assert_cmpint(proto_reply_kind(T_STATFS), ==, REPLY_DATA);
    g_assert_cmpint(proto_reply_kind(T_GETVERSION), ==, REPLY_DATA);
    g_assert_cmpint(proto_reply_kind(T_LGETXATTR), ==, REPLY_DATA);
    g_assert_cmpint(proto_reply_kind(T_LLISTXATTR), ==, REPLY_DATA);
    for (uint32_t t = T_MKNOD; t <= T_LINK; t++) {
        g_assert_cmpint(proto_reply_kind(t), ==, REPLY_STATUS);
    }
    for (uint32_t t = T_CHMOD; t <= T_REMOVE; t++) {
        g_assert_cmpint(proto_reply_kind(t), ==, REPLY_STATUS);
    }
    g_assert_cmpint(proto_reply_kind(T_LSETXATTR), ==, REPLY_STATUS);
    g_assert_cmpint(proto_reply_kind(T_LREMOVEXATTR), ==, REPLY_STATUS);
    g_assert_cmpstr(proto_type_name(T_LSETXATTR), ==, "lsetxattr");
    g_assert_cmpstr(proto_type_name(99), ==, "unknown");
}

/* ---- the one row per request type ---- */

static bool in_list(uint32_t t, const uint32_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == t) {
            return true;
        }
    }
    return false;
}

/* Every row says the same as PROTOCOL.md §4.0 and DESIGN.md: exactly the
 * four creations run as the guest, with uid and gid where the wire has
 * them; exactly the requests that open or truncate may wait for a lease;
 * everything that changes the export is refused on a read-only one. */
static void test_rows(void)
{
    static const uint32_t creds[] = {T_CREATE, T_MKNOD, T_MKDIR, T_SYMLINK};
    static const uint32_t blocks[] = {T_OPEN, T_CREATE, T_TRUNCATE, T_GETVERSION};
    static const uint32_t reads[] = {T_OPEN,     T_LSTAT,      T_READLINK,  T_STATFS,
                                     T_LGETXATTR, T_LLISTXATTR, T_GETVERSION};
    const uint32_t not_requests[] = {T_SUCCESS, T_ERROR, T_NTYPES, T_NTYPES + 1, 0xffffffff};

    for (size_t i = 0; i < G_N_ELEMENTS(not_requests); i++) {
        g_assert_null(proto_op(not_requests[i]));
    }
    for (uint32_t t = T_OPEN; t < T_NTYPES; t++) {
        const struct proto_op *op = proto_op(t);
        bool is_creds = in_list(t, creds, G_N_ELEMENTS(creds));
        size_t nargs;

        g_test_message("type %u", t);
        g_assert_nonnull(op);
        g_assert_nonnull(op->name);
        g_assert_nonnull(op->format);
        nargs = strlen(op->format);
        g_assert_cmpuint(nargs, >=, 1);
        g_assert_cmpuint(nargs, <=, PROTO_MAX_ARGS);
        g_assert_cmpuint(strspn(op->format, "dqsv"), ==, nargs);
        /* the shorthands read the row */
        g_assert_true(proto_body_format(t) == op->format);
        g_assert_true(proto_type_name(t) == op->name);
        g_assert_cmpint(proto_reply_kind(t), ==, op->reply);
        g_assert_cmpuint(op->flags & ~(PROTO_GUEST_CREDS | PROTO_MAY_BLOCK | PROTO_MUTATES), ==,
                         0);

        g_assert_cmpint(!!(op->flags & PROTO_GUEST_CREDS), ==, is_creds);
        if (is_creds) {
            /* uid then gid, two 'd' fields side by side */
            g_assert_cmpuint(op->uid_arg, <, nargs);
            g_assert_cmpuint(op->gid_arg, <, nargs);
            g_assert_cmpint(op->format[op->uid_arg], ==, 'd');
            g_assert_cmpint(op->format[op->gid_arg], ==, 'd');
            g_assert_cmpuint(op->gid_arg, ==, op->uid_arg + 1);
            /* creations change the export */
            g_assert_true(op->flags & PROTO_MUTATES);
        } else {
            g_assert_cmpuint(op->uid_arg, ==, 0);
            g_assert_cmpuint(op->gid_arg, ==, 0);
        }
        g_assert_cmpint(!!(op->flags & PROTO_MAY_BLOCK), ==,
                        in_list(t, blocks, G_N_ELEMENTS(blocks)));
        g_assert_cmpint(!!(op->flags & PROTO_MUTATES), ==, !in_list(t, reads, G_N_ELEMENTS(reads)));
    }
    /* where PROTOCOL.md §4.3-4.6 puts uid and gid */
    g_assert_cmpuint(proto_op(T_CREATE)->uid_arg, ==, 3);
    g_assert_cmpuint(proto_op(T_MKNOD)->uid_arg, ==, 0);
    g_assert_cmpuint(proto_op(T_MKDIR)->uid_arg, ==, 0);
    g_assert_cmpuint(proto_op(T_SYMLINK)->uid_arg, ==, 0);
    /* names are unique */
    for (uint32_t a = T_OPEN; a < T_NTYPES; a++) {
        for (uint32_t b = a + 1; b < T_NTYPES; b++) {
            g_assert_cmpstr(proto_op(a)->name, !=, proto_op(b)->name);
        }
    }
}

/* proto_identity reads uid:gid from a decoded body, -1 included, and only
 * for the creations: T_CHOWN's uid:gid are the new owner, not who acts. */
static void test_identity(void)
{
    for (uint32_t t = T_OPEN; t < T_NTYPES; t++) {
        const struct proto_op *op = proto_op(t);
        const char *fmt = op->format;
        struct body b = {.len = 0};
        struct proto_req req;
        uid_t uid = 7;
        gid_t gid = 7;

        /* every 'd' field its own value: 1001 + index */
        for (int i = 0; fmt[i] != '\0'; i++) {
            if (fmt[i] == 'd') {
                put_d(&b, 1001u + (uint32_t)i);
            } else if (fmt[i] == 'q') {
                put_q(&b, 5);
            } else {
                put_s(&b, "//x", 3);
            }
        }
        g_assert_cmpint(proto_decode_body(t, b.b, b.len, &req), ==, 0);
        if (!(op->flags & PROTO_GUEST_CREDS)) {
            g_assert_false(proto_identity(&req, &uid, &gid));
            g_assert_cmpuint(uid, ==, 7); /* untouched */
            g_assert_cmpuint(gid, ==, 7);
            continue;
        }
        g_assert_true(proto_identity(&req, &uid, &gid));
        g_assert_cmpuint(uid, ==, 1001u + op->uid_arg);
        g_assert_cmpuint(gid, ==, 1001u + op->gid_arg);
        /* -1 stays -1: the caller decides what it means */
        req.a[op->uid_arg].d = 0xffffffffu;
        req.a[op->gid_arg].d = 0xffffffffu;
        g_assert_true(proto_identity(&req, &uid, &gid));
        g_assert_cmpuint(uid, ==, (uid_t)-1);
        g_assert_cmpuint(gid, ==, (gid_t)-1);
    }
    {
        struct proto_req req = {.type = T_ERROR};
        uid_t uid;
        gid_t gid;

        g_assert_false(proto_identity(&req, &uid, &gid));
        req.type = 0xffffffffu;
        g_assert_false(proto_identity(&req, &uid, &gid));
    }
}

/* The exact bytes of an observed T_CREATE (PROTOCOL.md §4.3: 0o301, 0640,
 * 1000:1000) give the identity 1000:1000. */
static void test_identity_create_frame(void)
{
    struct body b = {.len = 0};
    struct proto_req req;
    uid_t uid;
    gid_t gid;

    put_s(&b, "//dir/new", 9);
    put_d(&b, 0301);
    put_d(&b, 0640);
    put_d(&b, 1000);
    put_d(&b, 2000);
    g_assert_cmpint(proto_decode_body(T_CREATE, b.b, b.len, &req), ==, 0);
    g_assert_true(proto_identity(&req, &uid, &gid));
    g_assert_cmpuint(uid, ==, 1000);
    g_assert_cmpuint(gid, ==, 2000);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proto/header", test_header);
    g_test_add_func("/proto/example-requests", test_example_requests);
    g_test_add_func("/proto/example-replies", test_example_replies);
    g_test_add_func("/proto/stat-layout", test_stat_layout);
    g_test_add_func("/proto/statfs-layout", test_statfs_layout);
    g_test_add_func("/proto/u64-reply", test_u64_reply);
    g_test_add_func("/proto/string-limits", test_string_limits);
    g_test_add_func("/proto/all-types", test_all_types);
    g_test_add_func("/proto/malformed-strings", test_malformed_strings);
    g_test_add_func("/proto/reply-kinds", test_reply_kinds);
    g_test_add_func("/proto/rows", test_rows);
    g_test_add_func("/proto/identity", test_identity);
    g_test_add_func("/proto/identity-create-frame", test_identity_create_frame);
    return g_test_run();
}
