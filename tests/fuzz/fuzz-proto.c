/* fuzz-proto.c - libFuzzer target for src/proto.c, the pure wire layer.
 *
 * Input byte 0 chooses what is exercised:
 *   < 0x80  a request body of type 2 + (byte % 20) in the rest of the input:
 *           proto_decode_body is compared with an independent decoder written
 *           from PROTOCOL.md (same verdict, same fields), its output is
 *           checked (strings inside the body, terminated, no NUL), and a
 *           decoded request re-encoded canonically must decode to the same;
 *   >= 0x80 a reply encoder, fed values from the input; the encoded reply is
 *           decoded independently and must carry exactly those values and
 *           pass the same reply oracle as the daemon's real replies.
 * Every buffer is allocated at its exact size so ASan sees any overrun.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Body layouts from PROTOCOL.md §4.0; 'v' is the binary xattr value. */
static const char *const model_formats[] = {
    [T_OPEN] = "sd",     [T_CREATE] = "sdddd",   [T_MKNOD] = "ddsdq",  [T_MKDIR] = "ddsd",
    [T_SYMLINK] = "ddss", [T_LINK] = "ss",       [T_LSTAT] = "s",      [T_READLINK] = "sd",
    [T_STATFS] = "s",    [T_CHMOD] = "sd",       [T_CHOWN] = "sdd",    [T_TRUNCATE] = "sq",
    [T_UTIME] = "sqqqq", [T_RENAME] = "ss",      [T_REMOVE] = "s",     [T_LGETXATTR] = "dss",
    [T_LLISTXATTR] = "ds", [T_LSETXATTR] = "ssvdd", [T_LREMOVEXATTR] = "ss",
    [T_GETVERSION] = "s",
};

struct model_field {
    uint64_t num;
    const uint8_t *str; /* into the untouched copy */
    size_t len;
};

/* The reference decoder: PROTOCOL.md §2.3 and DESIGN.md's string rule. */
static bool model_decode(const char *fmt, const uint8_t *b, size_t len, struct model_field *f)
{
    size_t off = 0;

    for (int i = 0; fmt[i] != '\0'; i++) {
        if (fmt[i] == 'd' || fmt[i] == 'q') {
            size_t n = fmt[i] == 'd' ? 4 : 8;
            uint32_t v32;

            if (len - off < n) {
                return false;
            }
            if (n == 4) {
                memcpy(&v32, b + off, 4);
                f[i].num = v32;
            } else {
                memcpy(&f[i].num, b + off, 8);
            }
            off += n;
        } else {
            uint16_t slen;

            if (len - off < 2) {
                return false;
            }
            memcpy(&slen, b + off, 2);
            off += 2;
            if (len - off < slen) {
                return false;
            }
            f[i].str = b + off;
            f[i].len = slen;
            off += slen;
            if (fmt[i] == 's') {
                if (f[i].len > 0 && f[i].str[f[i].len - 1] == '\0') {
                    f[i].len--;
                }
                if (memchr(f[i].str, '\0', f[i].len) != NULL) {
                    return false;
                }
            }
        }
    }
    return off == len;
}

/* Encodes req canonically (no trailing NULs) into out; returns the length. */
static size_t encode_canonical(const char *fmt, const struct proto_req *req, uint8_t *out)
{
    size_t off = 0;

    for (int i = 0; fmt[i] != '\0'; i++) {
        if (fmt[i] == 'd') {
            memcpy(out + off, &req->a[i].d, 4);
            off += 4;
        } else if (fmt[i] == 'q') {
            memcpy(out + off, &req->a[i].q, 8);
            off += 8;
        } else {
            memcpy(out + off, &req->a[i].s.len, 2);
            memcpy(out + off + 2, req->a[i].s.p, req->a[i].s.len);
            off += 2u + req->a[i].s.len;
        }
    }
    return off;
}

static void compare_fields(const char *fmt, const struct proto_req *req,
                           const struct model_field *f, const char *what)
{
    for (int i = 0; fmt[i] != '\0'; i++) {
        if (fmt[i] == 'd') {
            if (req->a[i].d != (uint32_t)f[i].num) {
                FZ_FAIL("%s: field %d: d %u, model %u", what, i, req->a[i].d,
                        (uint32_t)f[i].num);
            }
        } else if (fmt[i] == 'q') {
            if (req->a[i].q != f[i].num) {
                FZ_FAIL("%s: field %d: q differs", what, i);
            }
        } else if (req->a[i].s.len != f[i].len ||
                   memcmp(req->a[i].s.p, f[i].str, f[i].len) != 0) {
            FZ_FAIL("%s: field %d: string of %u bytes, model %zu", what, i, req->a[i].s.len,
                    f[i].len);
        }
    }
}

static void fuzz_request(uint32_t type, const uint8_t *data, size_t size)
{
    const char *fmt = model_formats[type];
    uint8_t *body = malloc(size > 0 ? size : 1);
    uint8_t *orig = malloc(size > 0 ? size : 1);
    struct model_field f[PROTO_MAX_ARGS] = {{0}};
    struct proto_req req;
    bool model_ok;
    int ret;

    if (proto_body_format(type) == NULL || strcmp(proto_body_format(type), fmt) != 0) {
        FZ_FAIL("type %u: format %s, PROTOCOL.md says %s", type, proto_body_format(type), fmt);
    }
    memcpy(body, data, size);
    memcpy(orig, data, size);
    model_ok = size <= PROTO_MAX_BODY && model_decode(fmt, orig, size, f);
    ret = proto_decode_body(type, body, size, &req);
    if ((ret == 0) != model_ok) {
        FZ_FAIL("type %u, %zu bytes: proto_decode_body %d, model %s", type, size, ret,
                model_ok ? "accepts" : "rejects");
    }
    if (ret != 0 && ret != -EINVAL) {
        FZ_FAIL("proto_decode_body returned %d", ret);
    }
    if (ret == 0) {
        uint8_t *canon = malloc(size > 0 ? size : 1);
        struct proto_req again;
        size_t clen;

        if (req.type != type) {
            FZ_FAIL("decoded type %u for %u", req.type, type);
        }
        for (int i = 0; fmt[i] != '\0'; i++) {
            if (fmt[i] != 's' && fmt[i] != 'v') {
                continue;
            }
            if ((uint8_t *)req.a[i].s.p < body ||
                (uint8_t *)req.a[i].s.p + req.a[i].s.len > body + size) {
                FZ_FAIL("field %d points outside the body", i);
            }
            if (fmt[i] == 's' && (req.a[i].s.p[req.a[i].s.len] != '\0' ||
                                  strlen(req.a[i].s.p) != req.a[i].s.len)) {
                FZ_FAIL("field %d is not a terminated C string of its length", i);
            }
        }
        compare_fields(fmt, &req, f, "decode");
        /* Canonical re-encoding is never longer (at most trailing NULs go). */
        clen = encode_canonical(fmt, &req, canon);
        if (clen > size) {
            FZ_FAIL("canonical encoding longer than the input");
        }
        if (proto_decode_body(type, canon, clen, &again) != 0) {
            FZ_FAIL("type %u: canonical re-encoding does not decode", type);
        }
        compare_fields(fmt, &again, f, "round trip");
        free(canon);
    }
    free(body);
    free(orig);
}

static uint64_t take(const uint8_t **p, size_t *n, size_t bytes)
{
    uint64_t v = 0;

    for (size_t i = 0; i < bytes && *n > 0; i++, (*p)++, (*n)--) {
        v |= (uint64_t)**p << (8 * i);
    }
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static void expect_status(const struct proto_reply *rep, int32_t v)
{
    if (rep->len != 12 || rd32(rep->buf) != (v < 0 ? T_ERROR : T_SUCCESS) ||
        rd32(rep->buf + 4) != 4 || (int32_t)rd32(rep->buf + 8) != v || rep->fd != -1) {
        FZ_FAIL("status reply for %d is wrong", v);
    }
}

static void fuzz_reply(uint8_t sel, const uint8_t *p, size_t n)
{
    struct proto_reply *rep = malloc(sizeof(*rep));
    struct fz_expect e = {0};
    bool fdv;

    switch (sel % 7) {
    case 0: {
        int32_t v = (int32_t)take(&p, &n, 4);

        proto_reply_status(rep, v);
        expect_status(rep, v);
        break;
    }
    case 1: {
        enum proto_reply_kind kind = (enum proto_reply_kind)(take(&p, &n, 1) % 3);
        int err = (int)take(&p, &n, 4);
        int32_t want = err < 0 ? err : -EIO;

        proto_reply_error(rep, kind, err);
        if (kind == REPLY_FD) {
            if (rep->len != 4 || (int32_t)rd32(rep->buf) != want || rep->fd != -1) {
                FZ_FAIL("fd error reply for %d is wrong", err);
            }
        } else {
            expect_status(rep, want);
        }
        break;
    }
    case 2: {
        int fd = (int)take(&p, &n, 4);

        proto_reply_fd(rep, fd);
        if (rep->len != 4 || rd32(rep->buf) != PROTO_FD_VALID || rep->fd != fd) {
            FZ_FAIL("fd reply is wrong");
        }
        break;
    }
    case 3: {
        struct stat st;
        const uint8_t *q = rep->buf + PROTO_HDR_SZ;

        memset(&st, 0, sizeof(st));
        st.st_dev = take(&p, &n, 8);
        st.st_ino = take(&p, &n, 8);
        st.st_nlink = take(&p, &n, 8);
        st.st_mode = (mode_t)take(&p, &n, 4);
        st.st_uid = (uid_t)take(&p, &n, 4);
        st.st_gid = (gid_t)take(&p, &n, 4);
        st.st_rdev = take(&p, &n, 8);
        st.st_size = (off_t)take(&p, &n, 8);
        st.st_blksize = (blksize_t)take(&p, &n, 8);
        st.st_blocks = (blkcnt_t)take(&p, &n, 8);
        st.st_atim.tv_sec = (time_t)take(&p, &n, 8);
        st.st_atim.tv_nsec = (long)take(&p, &n, 8);
        st.st_mtim.tv_sec = (time_t)take(&p, &n, 8);
        st.st_mtim.tv_nsec = (long)take(&p, &n, 8);
        st.st_ctim.tv_sec = (time_t)take(&p, &n, 8);
        st.st_ctim.tv_nsec = (long)take(&p, &n, 8);
        proto_reply_stat(rep, &st);
        if (rep->len != PROTO_HDR_SZ + 116 || rd32(rep->buf) != 0 || rd32(rep->buf + 4) != 116 ||
            rd64(q) != st.st_dev || rd64(q + 8) != st.st_ino || rd64(q + 16) != st.st_nlink ||
            rd32(q + 24) != st.st_mode || rd32(q + 28) != st.st_uid ||
            rd32(q + 32) != st.st_gid || rd64(q + 36) != st.st_rdev ||
            rd64(q + 44) != (uint64_t)st.st_size || rd64(q + 52) != (uint64_t)st.st_blksize ||
            rd64(q + 60) != (uint64_t)st.st_blocks ||
            rd64(q + 68) != (uint64_t)st.st_atim.tv_sec ||
            rd64(q + 76) != (uint64_t)st.st_atim.tv_nsec ||
            rd64(q + 84) != (uint64_t)st.st_mtim.tv_sec ||
            rd64(q + 92) != (uint64_t)st.st_mtim.tv_nsec ||
            rd64(q + 100) != (uint64_t)st.st_ctim.tv_sec ||
            rd64(q + 108) != (uint64_t)st.st_ctim.tv_nsec) {
            FZ_FAIL("ProxyStat encoding differs from PROTOCOL.md §4.1");
        }
        e.type = T_LSTAT;
        break;
    }
    case 4: {
        struct statfs sfs;
        const uint8_t *q = rep->buf + PROTO_HDR_SZ;
        uint64_t want[11];

        memset(&sfs, 0, sizeof(sfs));
        sfs.f_type = (long)take(&p, &n, 8);
        sfs.f_bsize = (long)take(&p, &n, 8);
        sfs.f_blocks = take(&p, &n, 8);
        sfs.f_bfree = take(&p, &n, 8);
        sfs.f_bavail = take(&p, &n, 8);
        sfs.f_files = take(&p, &n, 8);
        sfs.f_ffree = take(&p, &n, 8);
        sfs.f_fsid.__val[0] = (int)take(&p, &n, 4);
        sfs.f_fsid.__val[1] = (int)take(&p, &n, 4);
        sfs.f_namelen = (long)take(&p, &n, 8);
        sfs.f_frsize = (long)take(&p, &n, 8);
        want[0] = (uint64_t)sfs.f_type;
        want[1] = (uint64_t)sfs.f_bsize;
        want[2] = sfs.f_blocks;
        want[3] = sfs.f_bfree;
        want[4] = sfs.f_bavail;
        want[5] = sfs.f_files;
        want[6] = sfs.f_ffree;
        /* Sign-extended, as the reference binary sends it (observed; the
         * text of PROTOCOL.md §4.1 says zero-extended). */
        want[7] = (uint64_t)(int64_t)sfs.f_fsid.__val[0];
        want[8] = (uint64_t)(int64_t)sfs.f_fsid.__val[1];
        want[9] = (uint64_t)sfs.f_namelen;
        want[10] = (uint64_t)sfs.f_frsize;
        proto_reply_statfs(rep, &sfs);
        if (rep->len != PROTO_HDR_SZ + 88 || rd32(rep->buf) != 0 || rd32(rep->buf + 4) != 88) {
            FZ_FAIL("ProxyStatFS header wrong");
        }
        for (int i = 0; i < 11; i++) {
            if (rd64(q + 8 * i) != want[i]) {
                FZ_FAIL("ProxyStatFS field %d differs", i);
            }
        }
        e.type = T_STATFS;
        break;
    }
    case 5: {
        uint64_t v = take(&p, &n, 8);

        proto_reply_u64(rep, v);
        if (rep->len != 16 || rd32(rep->buf) != 0 || rd32(rep->buf + 4) != 8 ||
            rd64(rep->buf + 8) != v) {
            FZ_FAIL("u64 reply wrong");
        }
        break;
    }
    default: {
        size_t len = (size_t)(take(&p, &n, 3) % (PROTO_MAX_BODY + 16));
        uint8_t *area = proto_reply_string_area(rep);
        size_t fill = len < PROTO_MAX_STRING ? len : PROTO_MAX_STRING;

        for (size_t i = 0; i < fill; i++) {
            area[i] = n > 0 ? p[i % n] : (uint8_t)i;
        }
        proto_reply_string_commit(rep, len);
        if (len > PROTO_MAX_STRING) {
            expect_status(rep, -ENOBUFS);
        } else {
            uint16_t slen;

            memcpy(&slen, rep->buf + PROTO_HDR_SZ, 2);
            if (rep->len != PROTO_HDR_SZ + 2 + len || rd32(rep->buf) != 0 ||
                rd32(rep->buf + 4) != 2 + len || slen != len) {
                FZ_FAIL("string reply of %zu bytes wrong", len);
            }
            e.type = T_LGETXATTR;
            e.arg = (int32_t)len + 1; /* a bound, never a probe */
        }
        break;
    }
    }
    if (e.type != 0 && fz_check_reply(&e, rep->buf, rep->len, &fdv) != rep->len) {
        FZ_FAIL("reply length disagrees with its header");
    }
    free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_hdr hdr;

    if (size < 1) {
        return 0;
    }
    if (size >= 9) {
        int ret = proto_decode_header(data + 1, &hdr);
        bool known = hdr.type >= T_OPEN && hdr.type <= T_GETVERSION;

        if (!known ? ret != -EPROTO : (hdr.size > PROTO_MAX_BODY ? ret != -EMSGSIZE : ret != 0)) {
            FZ_FAIL("proto_decode_header(type %u, size %u) = %d", hdr.type, hdr.size, ret);
        }
    }
    if (data[0] < 0x80) {
        fuzz_request(T_OPEN + data[0] % 20u, data + 1, size - 1);
    } else {
        fuzz_reply(data[0], data + 1, size - 1);
    }
    return 0;
}
