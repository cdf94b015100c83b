/*
 * Differential test: one scripted request sequence (all 20 request types,
 * success and error paths) against QEMU's reference helper and against
 * virtfs-proxyd, both in "-f" mode on identical fresh trees.  Replies are
 * compared after normalising inode/device numbers and times.  Differences
 * that are reference bugs or deliberate decisions are listed below with
 * their PROTOCOL.md / DESIGN.md reference; any other difference fails.
 */
#include <config.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Times at or below this are set by the test; newer ones mean "now". */
#define FIXED_TIME_MAX 1000000

typedef struct {
    const char *name;
    const char *session;   /* steps of one session share a connection */
    uint32_t type;
    const char *fmt;       /* d q s S b(string + next number as length) */
    const char *str[4];
    int64_t num[6];
    int32_t xsize;         /* decides the reply kind of 17/18 */
    int timeout_ms;        /* 0: default */
} Step;

typedef struct {
    const char *name;
    const char *why;
} Expected;

#define MAIN "main"

/* The script table gives only the fields each step needs. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define O_DIR O_DIRECTORY

static const Step script[] = {
    { "lstat-root", MAIN, 8, "S", { "/" } },
    { "lstat-file", MAIN, 8, "S", { "//file" } },
    { "lstat-file-no-nul", MAIN, 8, "s", { "//file" } },
    { "lstat-enoent", MAIN, 8, "S", { "//missing" } },
    { "lstat-symlink", MAIN, 8, "S", { "//link" } },
    { "lstat-dotdot", MAIN, 8, "S", { "//dir/../../.." } },
    { "lstat-empty", MAIN, 8, "s", { "" } },
    { "lstat-embedded-nul", MAIN, 8, "b", { "//file\0zzz" }, { 10 } },
    { "lstat-trailing-bytes", MAIN, 8, "Sd", { "/" }, { 7 } },
    { "lstat-empty-body", MAIN, 8, "" },
    { "open-file", MAIN, 2, "Sd", { "//file" }, { O_RDONLY } },
    { "open-dir", MAIN, 2, "Sd", { "//dir" }, { O_DIR } },
    { "open-enoent", MAIN, 2, "Sd", { "//missing" }, { O_RDONLY } },
    { "open-fifo-nonblock", MAIN, 2, "Sd", { "//fifo" },
      { O_RDONLY | O_NONBLOCK } },
    { "open-chardev", MAIN, 2, "Sd", { "//null" }, { O_RDWR } },
    { "open-abslink", MAIN, 2, "Sd", { "//abslink" }, { O_RDONLY } },
    { "open-escape", MAIN, 2, "Sd", { "//dir/../../../etc/passwd" },
      { O_RDONLY } },
    { "open-missing-flags", MAIN, 2, "S", { "//file" } },
    { "create-new", MAIN, 3, "sdddd", { "//new" },
      { O_CREAT | O_EXCL | O_RDWR, 0666, 1000, 1000 } },
    { "create-new-lstat", MAIN, 8, "S", { "//new" } },
    { "create-exists", MAIN, 3, "sdddd", { "//new" },
      { O_CREAT | O_EXCL | O_RDWR, 0666, 1000, 1000 } },
    { "create-root-suid", MAIN, 3, "sdddd", { "//suid" },
      { O_CREAT | O_RDWR, 04755, 0, 0 } },
    { "create-root-suid-lstat", MAIN, 8, "S", { "//suid" } },
    { "mkdir-user", MAIN, 5, "ddsd", { "//d1" }, { 1000, 1000, 040750 } },
    { "mkdir-user-lstat", MAIN, 8, "S", { "//d1" } },
    { "mkdir-root", MAIN, 5, "ddsd", { "//d0" }, { 0, 0, 0777 } },
    { "mkdir-root-lstat", MAIN, 8, "S", { "//d0" } },
    { "mkdir-exists", MAIN, 5, "ddsd", { "//d1" }, { 0, 0, 0755 } },
    { "mkdir-embedded-nul", MAIN, 5, "ddbd", { "//e1\0zz" },
      { 0, 0, 7, 0755 } },
    { "mkdir-embedded-nul-lstat", MAIN, 8, "S", { "//e1" } },
    { "mknod-fifo", MAIN, 4, "ddsdq", { "//f1" },
      { 1000, 1000, S_IFIFO | 0600, 0 } },
    { "mknod-fifo-lstat", MAIN, 8, "S", { "//f1" } },
    { "mknod-chardev-root", MAIN, 4, "ddsdq", { "//c1" },
      { 0, 0, S_IFCHR | 0600, 259 } },
    { "mknod-chardev-user", MAIN, 4, "ddsdq", { "//c2" },
      { 1000, 1000, S_IFCHR | 0600, 259 } },
    { "symlink", MAIN, 6, "ddss", { "some/target", "//s1" }, { 1000, 1000 } },
    { "symlink-lstat", MAIN, 8, "S", { "//s1" } },
    { "symlink-exists", MAIN, 6, "ddss", { "x", "//s1" }, { 0, 0 } },
    { "link", MAIN, 7, "Ss", { "//file", "//hard" } },
    { "link-lstat", MAIN, 8, "S", { "//hard" } },
    { "link-symlink", MAIN, 7, "Ss", { "//link", "//hardsym" } },
    { "link-symlink-lstat", MAIN, 8, "S", { "//hardsym" } },
    { "link-enoent", MAIN, 7, "Ss", { "//missing", "//x" } },
    { "readlink", MAIN, 9, "Sd", { "//link" }, { 4096 } },
    { "readlink-bufsize-3", MAIN, 9, "Sd", { "//link" }, { 3 } },
    { "readlink-bufsize-1", MAIN, 9, "Sd", { "//link" }, { 1 } },
    { "readlink-bufsize-65537", MAIN, 9, "Sd", { "//link" }, { 65537 } },
    { "readlink-not-symlink", MAIN, 9, "Sd", { "//file" }, { 4096 } },
    { "readlink-long", MAIN, 9, "Sd", { "//long" }, { 4096 } },
    { "statfs-root", MAIN, 10, "S", { "/" } },
    { "statfs-dirlink", MAIN, 10, "S", { "//dlink" } },
    { "statfs-enoent", MAIN, 10, "S", { "//missing" } },
    { "chmod", MAIN, 11, "Sd", { "//file" }, { S_IFREG | 0604 } },
    { "chmod-lstat", MAIN, 8, "S", { "//file" } },
    { "chmod-via-symlink", MAIN, 11, "Sd", { "//link" }, { 0640 } },
    { "chmod-via-symlink-lstat", MAIN, 8, "S", { "//file" } },
    { "chmod-trailing-bytes", MAIN, 11, "Sdd", { "//full/f" }, { 0777, 1 } },
    { "chmod-trailing-bytes-lstat", MAIN, 8, "S", { "//full/f" } },
    { "chown", MAIN, 12, "Sdd", { "//file" }, { 4242, 4343 } },
    { "chown-keep", MAIN, 12, "Sdd", { "//file" }, { -1, -1 } },
    { "chown-lstat", MAIN, 8, "S", { "//file" } },
    { "chown-symlink", MAIN, 12, "Sdd", { "//link" }, { 7, 7 } },
    { "chown-symlink-lstat", MAIN, 8, "S", { "//link" } },
    { "truncate", MAIN, 13, "Sq", { "//file" }, { 3 } },
    { "truncate-lstat", MAIN, 8, "S", { "//file" } },
    { "truncate-dir", MAIN, 13, "Sq", { "//dir" }, { 0 } },
    { "truncate-negative", MAIN, 13, "Sq", { "//file" }, { -1 } },
    { "utime", MAIN, 14, "Sqqqq", { "//file" }, { 1000, 5, 2000, 7 } },
    { "utime-lstat", MAIN, 8, "S", { "//file" } },
    { "utime-omit-atime", MAIN, 14, "Sqqqq", { "//file" },
      { 0, UTIME_OMIT, 3000, 0 } },
    { "utime-omit-atime-lstat", MAIN, 8, "S", { "//file" } },
    { "utime-symlink", MAIN, 14, "Sqqqq", { "//link" }, { 10, 0, 20, 0 } },
    { "utime-symlink-lstat", MAIN, 8, "S", { "//link" } },
    { "utime-bad-nsec", MAIN, 14, "Sqqqq", { "//file" },
      { 0, 2000000000, 0, 0 } },
    { "rename", MAIN, 15, "ss", { "//hard", "//hard2" } },
    { "rename-lstat", MAIN, 8, "S", { "//hard2" } },
    { "rename-enoent", MAIN, 15, "ss", { "//missing", "//x" } },
    { "rename-into-self", MAIN, 15, "ss", { "//dir", "//dir/sub" } },
    { "remove-file", MAIN, 16, "s", { "//hard2" } },
    { "remove-dir", MAIN, 16, "s", { "//d0" } },
    { "remove-nonempty", MAIN, 16, "s", { "//full" } },
    { "remove-enoent", MAIN, 16, "s", { "//missing" } },
    { "getxattr-probe", MAIN, 17, "dSs", { "//file", "user.k" }, { 0 }, 0 },
    { "getxattr", MAIN, 17, "dSs", { "//file", "user.k" }, { 6 }, 6 },
    { "getxattr-erange", MAIN, 17, "dSs", { "//file", "user.k" }, { 3 }, 3 },
    { "getxattr-enodata", MAIN, 17, "dSs", { "//file", "user.none" }, { 0 },
      0 },
    { "getxattr-65535", MAIN, 17, "dSs", { "//file", "user.k" }, { 65535 },
      65535 },
    { "getxattr-symlink", MAIN, 17, "dSs", { "//link", "user.k" }, { 0 }, 0 },
    { "listxattr-probe", MAIN, 18, "dS", { "//file" }, { 0 }, 0 },
    { "listxattr", MAIN, 18, "dS", { "//file" }, { 100 }, 100 },
    { "listxattr-erange", MAIN, 18, "dS", { "//file" }, { 2 }, 2 },
    { "setxattr", MAIN, 19, "Ssbdd", { "//file", "user.n", "abc" },
      { 3, 3, 0 } },
    { "setxattr-check", MAIN, 17, "dSs", { "//file", "user.n" }, { 0 }, 0 },
    { "setxattr-size-mismatch", MAIN, 19, "Ssbdd",
      { "//file", "user.leak", "ab" }, { 2, 40, 0 } },
    { "setxattr-size-mismatch-check", MAIN, 17, "dSs",
      { "//file", "user.leak" }, { 0 }, 0 },
    { "setxattr-empty", MAIN, 19, "Ssbdd", { "//file", "user.e", "" },
      { 0, 0, 0 } },
    { "setxattr-create-exists", MAIN, 19, "Ssbdd",
      { "//file", "user.n", "x" }, { 1, 1, 1 } },
    { "setxattr-replace-missing", MAIN, 19, "Ssbdd",
      { "//file", "user.zz", "x" }, { 1, 1, 2 } },
    { "setxattr-trusted", MAIN, 19, "Ssbdd", { "//file", "trusted.x", "x" },
      { 1, 1, 0 } },
    { "removexattr", MAIN, 20, "Ss", { "//file", "user.n" } },
    { "removexattr-again", MAIN, 20, "Ss", { "//file", "user.n" } },
    { "getversion-file", MAIN, 21, "S", { "//file" } },
    { "getversion-dir", MAIN, 21, "S", { "//dir" } },
    { "getversion-enoent", MAIN, 21, "S", { "//missing" } },
    { "getversion-chardev", MAIN, 21, "S", { "//null" } },
    /* Issue 13: the kernel's own answers, as the chrooted reference gets
     * them (tests/integration/test-exact.c has many more). */
    { "create-no-creat-missing", MAIN, 3, "sdddd", { "//nocreat" },
      { O_RDWR, 0644, 0, 0 } },
    { "create-no-creat-missing-lstat", MAIN, 8, "S", { "//nocreat" } },
    { "create-no-creat-existing", MAIN, 3, "sdddd", { "//file" },
      { O_RDONLY, 0644, 0, 0 } },
    { "create-creat-dir", MAIN, 3, "sdddd", { "//dir" },
      { O_CREAT | O_RDONLY, 0644, 0, 0 } },
    { "create-dangling", MAIN, 3, "sdddd", { "//dangle" },
      { O_CREAT | O_RDWR, 0640, 0, 0 } },
    { "create-dangling-lstat", MAIN, 8, "S", { "//made" } },
    { "create-creat-directory-empty", MAIN, 3, "sdddd", { "" },
      { O_CREAT | O_DIRECTORY, 0644, 0, 0 } },
    { "open-directory-nofollow-link", MAIN, 2, "Sd", { "//link" },
      { O_DIRECTORY | O_NOFOLLOW } },
    { "truncate-negative-missing", MAIN, 13, "Sq", { "//missing/x" }, { -1 } },
    { "getxattr-empty-name-missing", MAIN, 17, "dSs", { "//missing/x", "" },
      { 0 }, 0 },
    { "setxattr-empty-name-missing", MAIN, 19, "Ssbdd",
      { "//missing/x", "", "x" }, { 1, 1, 0 } },
    { "mknod-dir-missing", MAIN, 4, "ddsdq", { "//missing/x" },
      { 0, 0, S_IFDIR | 0755, 0 } },
    { "symlink-empty-target", MAIN, 6, "ddss", { "", "//file" }, { 0, 0 } },
    { "link-old-missing-new-notdir", MAIN, 7, "Ss", { "//missing", "//file/x" } },
    { "remove-dotdot", MAIN, 16, "s", { "//dir/.." } },
    { "remove-dot", MAIN, 16, "s", { "//dir/." } },
    { "mkdir-trailing-slash", MAIN, 5, "ddsd", { "//ed/" }, { 0, 0, 0755 } },
    { "remove-trailing-slash", MAIN, 16, "s", { "//ed/" } },
    { "remove-trailing-slash-lstat", MAIN, 8, "S", { "//ed" } },
    { "rename-dir-slash-onto-file", MAIN, 15, "ss", { "//dir/", "//file" } },
    { "rename-file-slash", MAIN, 15, "ss", { "//file/", "//x" } },
    /* Requests that hang or crash the reference: one process each. */
    { "open-fifo-blocking", "fifo-open", 2, "Sd", { "//fifo" }, { O_RDONLY },
      0, 1000 },
    { "getversion-fifo", "fifo-version", 21, "S", { "//fifo" }, { 0 }, 0,
      1000 },
    { "readlink-negative", "neg1", 9, "Sd", { "//link" }, { -1 } },
    { "getxattr-negative", "neg2", 17, "dSs", { "//file", "user.k" }, { -1 },
      -1 },
    { "listxattr-negative", "neg3", 18, "dS", { "//file" }, { -1 }, -1 },
    { "unknown-type-22", "bad1", 22, "S", { "/" } },
    { "unknown-type-0", "bad2", 0, "S", { "/" } },
    { "oversize-frame", "bad3", 8, "b", { "" }, { 0 } },
    /* PROTOCOL.md PROTOCOL 7.3: R1 then R2. */
    { "r1-mkdir-0-1000", "r1", 5, "ddsd", { "//r1a" }, { 0, 1000, 0755 } },
    { "r1-root-chown", "r1", 12, "Sdd", { "//dir" }, { 4242, 4242 } },
    { "r2-mkdir-1000-1000", "r1", 5, "ddsd", { "//r1b" },
      { 1000, 1000, 0755 } },
    { "r2-after", "r1", 8, "S", { "/" } },
};

/* Each entry: the step, and why it differs (PROTOCOL.md section). */
static const Expected expected[] = {
    { "lstat-embedded-nul", "2.3: reference truncates at the NUL, "
      "virtfs-proxyd rejects (EINVAL)" },
    { "mkdir-embedded-nul", "2.3: reference creates the truncated name" },
    { "mkdir-embedded-nul-lstat", "2.3: follow-on of the truncation" },
    { "lstat-trailing-bytes", "3.2/7.5: reference ignores trailing bytes; "
      "DESIGN.md: EINVAL" },
    { "chmod-trailing-bytes", "7.5: reference ignores trailing bytes" },
    { "chmod-trailing-bytes-lstat", "7.5: follow-on (mode changed)" },
    { "lstat-empty-body", "3.7/7.5: reference ENOBUFS for missing fields, "
      "DESIGN.md: EINVAL" },
    { "open-missing-flags", "3.7/7.5: ENOBUFS vs EINVAL" },
    { "mknod-chardev-root", "4.4/7.6: devices only with --allow-devices "
      "(DESIGN.md decision)" },
    { "readlink-bufsize-65537", "4.9: bufsize > 65536 is EINVAL "
      "(DESIGN.md decision)" },
    { "getxattr-65535", "4.17: size > 65534 is EINVAL (DESIGN.md)" },
    { "setxattr-size-mismatch", "4.19: reference trusts size and "
      "over-reads its heap" },
    { "setxattr-size-mismatch-check", "4.19: follow-on (40 leaked bytes "
      "stored by the reference)" },
    { "getversion-file", "4.21: reference sends uninitialised upper 32 "
      "bits" },
    { "getversion-dir", "4.21: reference sends uninitialised upper 32 "
      "bits" },
    { "open-fifo-blocking", "4.2: reference blocks forever in open()" },
    { "getversion-fifo", "4.21: reference blocks forever on a FIFO" },
    { "getversion-chardev", "4.21: reference opens the device (ENOTTY "
      "from the ioctl); same errno expected" },
    { "readlink-negative", "4.9/7.5: negative bufsize crashes the "
      "reference" },
    { "getxattr-negative", "4.17/7.5: negative size crashes the "
      "reference" },
    { "listxattr-negative", "4.18/7.5: negative size crashes the "
      "reference" },
    { "r1-root-chown", "PROTOCOL 7.3 R1: reference lost CAP_CHOWN (EPERM)" },
    { "r2-mkdir-1000-1000", "PROTOCOL 7.3 R2: reference aborts (SIGABRT)" },
};

static const char *expected_reason(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        if (strcmp(expected[i].name, name) == 0) {
            return expected[i].why;
        }
    }
    return NULL;
}

/* ---- trees ------------------------------------------------------------- */

static void set_fixed_times(const char *path)
{
    struct timespec ts[2] = { { 100000, 0 }, { 100000, 0 } };

    utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static void build_tree(const char *root)
{
    static const char *const order[] = {
        "dir/inner", "full/f", "file", "link", "dlink", "abslink", "fifo",
        "null", "long", "dangle", "dir", "full", "",
    };
    char *p;

#define P(rel) (g_free(p), p = g_build_filename(root, rel, NULL))
    p = NULL;
    vt_mkdir(root, 0755);
    vt_mkdir(P("dir"), 0755);
    vt_write_file(P("dir/inner"), "inner");
    vt_mkdir(P("full"), 0755);
    vt_write_file(P("full/f"), "f");
    vt_write_file(P("file"), "hello");
    chmod(p, 0644);
    lsetxattr(p, "user.k", "value1", 6, 0);
    vt_symlink("file", P("link"));
    vt_symlink("dir", P("dlink"));
    vt_symlink("/file", P("abslink"));
    vt_symlink("made", P("dangle"));
    vt_mkfifo(P("fifo"));
    mknod(P("null"), S_IFCHR | 0666, makedev(1, 3));
    {
        char *target = g_strnfill(200, 't');

        vt_symlink(target, P("long"));
        g_free(target);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
        set_fixed_times(P(order[i]));
    }
    g_free(p);
#undef P
}

/* ---- running a step ----------------------------------------------------- */

static int encode_step(const Step *s, uint8_t *buf, size_t cap)
{
    size_t off = PC_HDR_SIZE;
    size_t si = 0, ni = 0;
    uint8_t tmp[PC_HDR_SIZE + 4096];

    if (strcmp(s->name, "oversize-frame") == 0) {
        /* Header announcing 65537 body bytes. */
        uint32_t hdr[2] = { s->type, PC_MAX_IO + 1 };

        memcpy(buf, hdr, sizeof(hdr));
        return PC_HDR_SIZE;
    }
    for (const char *f = s->fmt; *f != '\0'; f++) {
        int n;

        switch (*f) {
        case 'd':
            n = pc_encode(tmp, sizeof(tmp), 0, "d", (int32_t)s->num[ni++]);
            break;
        case 'q':
            n = pc_encode(tmp, sizeof(tmp), 0, "q", s->num[ni++]);
            break;
        case 's':
            n = pc_encode(tmp, sizeof(tmp), 0, "s", s->str[si++]);
            break;
        case 'S':
            n = pc_encode(tmp, sizeof(tmp), 0, "S", s->str[si++]);
            break;
        default: /* 'b' */
            n = pc_encode(tmp, sizeof(tmp), 0, "b", s->str[si++],
                          (size_t)s->num[ni++]);
            break;
        }
        if (n < 0 || off + (size_t)n - PC_HDR_SIZE > cap) {
            return PC_ERR_USAGE;
        }
        memcpy(buf + off, tmp + PC_HDR_SIZE, (size_t)n - PC_HDR_SIZE);
        off += (size_t)n - PC_HDR_SIZE;
    }
    {
        uint32_t hdr[2] = { s->type, (uint32_t)(off - PC_HDR_SIZE) };

        memcpy(buf, hdr, sizeof(hdr));
    }
    return (int)off;
}

static char *describe_time(int64_t sec, int64_t nsec)
{
    if (sec > FIXED_TIME_MAX || sec < -FIXED_TIME_MAX) {
        return g_strdup("now");
    }
    return g_strdup_printf("%" PRId64 ".%09" PRId64, sec, nsec);
}

/* A normalised, human-readable description of one reply. */
static char *describe(const Step *s, int rc, const pc_reply *r)
{
    if (rc < 0) {
        return g_strdup(pc_strerror(rc));
    }
    if (r->result < 0) {
        return g_strdup_printf("error %s", pc_strerror(r->result));
    }
    if (r->kind == PC_KIND_FD) {
        struct stat st;

        if (fstat(r->fd, &st) < 0) {
            return g_strdup("fd (fstat failed)");
        }
        return g_strdup_printf("fd mode=0%o uid=%u gid=%u size=%jd",
                               st.st_mode, st.st_uid, st.st_gid,
                               (intmax_t)st.st_size);
    }
    if (r->kind == PC_KIND_STATUS) {
        return g_strdup_printf("status %d", r->result);
    }
    switch (s->type) {
    case PC_T_LSTAT: {
        pc_proxy_stat st;
        char *a, *m, *out;

        if (pc_decode_stat(r->payload, r->len, &st) < 0) {
            return g_strdup_printf("bad stat payload (%zu bytes)", r->len);
        }
        a = describe_time(st.atime_sec, st.atime_nsec);
        m = describe_time(st.mtime_sec, st.mtime_nsec);
        out = g_strdup_printf("stat mode=0%o uid=%u gid=%u nlink=%" PRIu64
                              " size=%" PRIu64 " rdev=%" PRIu64
                              " atime=%s mtime=%s",
                              st.mode, st.uid, st.gid, st.nlink, st.size,
                              st.rdev, a, m);
        g_free(a);
        g_free(m);
        return out;
    }
    case PC_T_STATFS: {
        pc_proxy_statfs sf;

        if (pc_decode_statfs(r->payload, r->len, &sf) < 0) {
            return g_strdup_printf("bad statfs payload (%zu bytes)", r->len);
        }
        return g_strdup_printf("statfs type=%#" PRIx64 " bsize=%" PRIu64
                               " namelen=%" PRIu64 " frsize=%" PRIu64
                               " fsid=%#" PRIx64 ",%#" PRIx64,
                               sf.type, sf.bsize, sf.namelen, sf.frsize,
                               sf.fsid[0], sf.fsid[1]);
    }
    case PC_T_GETVERSION: {
        uint64_t gen;

        if (r->len != 8) {
            return g_strdup_printf("bad version payload (%zu bytes)", r->len);
        }
        memcpy(&gen, r->payload, 8);
        /* The low half differs per inode; the upper half must be 0. */
        return g_strdup_printf("version upper=%#" PRIx64 "%s", gen >> 32,
                               (uint32_t)gen != 0 ? " low=nonzero"
                                                   : " low=0");
    }
    default: {
        char *hex = vt_hex(r->payload, r->len);
        char *out = g_strdup_printf("data %zu bytes: %s", r->len, hex);

        g_free(hex);
        return out;
    }
    }
}

typedef struct {
    const char *program;
    const char *root;
    const char *log;
    pc_conn *c;
    const char *session;
} Side;

static char *run_step(Side *side, const Step *s)
{
    uint8_t *frame = g_malloc(PC_MAX_FRAME);
    pc_reply *r = g_new0(pc_reply, 1);
    char *desc;
    int n, rc;

    if (side->c == NULL || strcmp(side->session, s->session) != 0) {
        pc_spawn_opts o = {
            .program = side->program,
            .export_dir = side->root,
            .log_path = side->log,
        };

        pc_free(side->c);
        side->c = NULL;
        side->session = s->session;
        rc = pc_spawn(&o, &side->c);
        if (rc < 0) {
            g_free(frame);
            g_free(r);
            return g_strdup_printf("spawn failed: %s", pc_strerror(rc));
        }
    }
    pc_conn_set_timeout(side->c, s->timeout_ms > 0 ? s->timeout_ms : 3000);
    n = encode_step(s, frame, PC_MAX_FRAME);
    rc = n < 0 ? n : pc_send_raw(side->c, frame, (size_t)n);
    if (rc == 0) {
        rc = pc_recv(side->c, pc_reply_kind(s->type, s->xsize), r);
    }
    desc = describe(s, rc, r);
    if (rc == 0 && r->fd >= 0) {
        close(r->fd);
    }
    if (rc < 0) {
        /* This server is unusable now: start afresh for the next step. */
        pc_free(side->c);
        side->c = NULL;
    }
    g_free(frame);
    g_free(r);
    return desc;
}

static void test_differential(void)
{
    const char *ref = vt_reference_path();
    const char *daemon = vt_daemon_path();
    char tmpl[] = "/tmp/vpd-diff.XXXXXX";
    char *ref_root, *new_root, *ref_log, *new_log;
    Side a = { 0 }, b = { 0 };
    int same = 0, expected_diffs = 0, unexpected = 0;

    if (ref == NULL) {
        g_test_skip("REFERENCE_HELPER is not set or not executable");
        return;
    }
    if (daemon == NULL) {
        g_test_skip("VIRTFS_PROXYD is not set or not executable");
        return;
    }
    g_assert_nonnull(mkdtemp(tmpl));
    ref_root = g_build_filename(tmpl, "ref", NULL);
    new_root = g_build_filename(tmpl, "new", NULL);
    ref_log = g_strdup_printf("%s.ref.log", tmpl);
    new_log = g_strdup_printf("%s.new.log", tmpl);
    build_tree(ref_root);
    build_tree(new_root);
    a = (Side){ .program = ref, .root = ref_root, .log = ref_log,
                .session = "" };
    b = (Side){ .program = daemon, .root = new_root, .log = new_log,
                .session = "" };

    for (size_t i = 0; i < G_N_ELEMENTS(script); i++) {
        const Step *s = &script[i];
        char *ra = run_step(&a, s);
        char *rb = run_step(&b, s);
        const char *why = expected_reason(s->name);

        if (strcmp(ra, rb) == 0) {
            same++;
            if (why != NULL) {
                g_test_message("%-28s same (%s) though listed: %s", s->name,
                               ra, why);
            }
        } else if (why != NULL) {
            expected_diffs++;
            g_test_message("%-28s expected difference [%s]\n"
                           "    reference:     %s\n    virtfs-proxyd: %s",
                           s->name, why, ra, rb);
        } else {
            unexpected++;
            g_test_message("%-28s UNEXPECTED DIFFERENCE (%s)\n"
                           "    reference:     %s\n    virtfs-proxyd: %s",
                           s->name, pc_type_name(s->type), ra, rb);
            g_test_fail();
        }
        g_free(ra);
        g_free(rb);
    }
    g_test_message("%zu steps: %d identical, %d expected differences, "
                   "%d unexpected", G_N_ELEMENTS(script), same,
                   expected_diffs, unexpected);
    pc_free(a.c);
    pc_free(b.c);
    vt_rm_rf(tmpl);
    unlink(ref_log);
    unlink(new_log);
    g_free(ref_root);
    g_free(new_root);
    g_free(ref_log);
    g_free(new_log);
}

/* Every request type appears in the script at least once. */
static void test_script_coverage(void)
{
    for (uint32_t t = PC_T_OPEN; t <= PC_T_GETVERSION; t++) {
        bool found = false;

        for (size_t i = 0; i < G_N_ELEMENTS(script); i++) {
            found = found || script[i].type == t;
        }
        if (!found) {
            g_test_message("%s missing from the script", pc_type_name(t));
            g_test_fail();
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        bool found = false;

        for (size_t j = 0; j < G_N_ELEMENTS(script); j++) {
            found = found || strcmp(script[j].name, expected[i].name) == 0;
        }
        g_assert_true(found);
    }
}

int main(int argc, char **argv)
{
    vt_init(&argc, &argv);
    g_test_add_func("/diff/script-coverage", test_script_coverage);
    g_test_add_func("/diff/reference-vs-daemon", test_differential);
    return g_test_run();
}
