/* fuzz-common.c - sandbox, throw-away export, canaries and reply oracle
 * shared by the fuzz targets (see fuzz-common.h). */
#include "config.h"

#include <cap-ng.h>
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "caps.h"
#include "fuzz-common.h"
#include "ops.h"
#include "proto.h"

#define MAX_WRITABLE 16
#define CANARY_UID 4242
#define CANARY_GID 4343
#define CANARY_MTIME 1000000000

static char sandbox[PATH_MAX];
static char export_dir[PATH_MAX];
static char outside_dir[PATH_MAX];
static struct export ex = {.root_fd = -1};
static dev_t export_dev;
static ino_t export_ino;

struct canary {
    const char *rel; /* relative to the sandbox */
    mode_t mode;     /* including the type */
    const char *content;
    struct stat st;  /* as created */
};

static struct canary canaries[] = {
    {"top-canary", S_IFREG | 0640, "top canary\n", {0}},
    {"outside", S_IFDIR | 0751, NULL, {0}},
    {"outside/c1", S_IFREG | 0640, "canary one\n", {0}},
    {"outside/c2", S_IFREG | 04755, "canary two\n", {0}},
    {"outside/d", S_IFDIR | 0700, NULL, {0}},
    {"outside/d/c3", S_IFREG | 0600, "canary three\n", {0}},
};

/* The only names allowed in each directory outside the export. */
static const char *const sandbox_names[] = {"export", "outside", "top-canary", NULL};
static const char *const outside_names[] = {"c1", "c2", "d", NULL};
static const char *const outside_d_names[] = {"c3", NULL};

void fz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\n==FUZZ ORACLE== %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz sandbox: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- sandbox ------------------------------------------------------------- */

static char *writable[MAX_WRITABLE];
static int nwritable;

static void add_writable(const char *dir)
{
    char real[PATH_MAX];
    struct stat st;

    if (nwritable == MAX_WRITABLE || realpath(dir, real) == NULL || stat(real, &st) < 0 ||
        !S_ISDIR(st.st_mode)) {
        return;
    }
    for (int i = 0; i < nwritable; i++) {
        if (strcmp(writable[i], real) == 0) {
            return;
        }
    }
    writable[nwritable++] = strdup(real);
}

static void add_writable_parent(const char *path)
{
    char *copy = strdup(path);
    char *slash = strrchr(copy, '/');

    if (slash == NULL) {
        add_writable(".");
    } else {
        *slash = '\0';
        add_writable(slash == copy ? "/" : copy);
    }
    free(copy);
}

static void set_readonly(const char *path, bool ro)
{
    struct mount_attr attr = {0};

    if (ro) {
        attr.attr_set = MOUNT_ATTR_RDONLY;
    } else {
        attr.attr_clr = MOUNT_ATTR_RDONLY;
    }
    if (mount_setattr(AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        fprintf(stderr, "fuzz sandbox: mount_setattr %s %s: %s\n", path, ro ? "ro" : "rw",
                strerror(errno));
        if (!ro) {
            exit(1);
        }
    }
}

static void make_canary(struct canary *c)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", sandbox, c->rel);
    if (S_ISDIR(c->mode)) {
        if (mkdir(path, 0700) < 0) {
            die(path);
        }
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

        if (fd < 0 || write(fd, c->content, strlen(c->content)) < 0) {
            die(path);
        }
        close(fd);
        /* tmpfs has user xattrs from Linux 6.6 on; older kernels skip. */
        lsetxattr(path, "user.canary", "yes", 3, 0);
    }
    if (chown(path, CANARY_UID, CANARY_GID) < 0 || chmod(path, c->mode & 07777) < 0) {
        die(path);
    }
}

static void stamp_canaries(void)
{
    /* Children first, so that setting a file's times does not change the
     * directory's, then record everything. */
    for (int i = (int)(sizeof(canaries) / sizeof(canaries[0])) - 1; i >= 0; i--) {
        char path[PATH_MAX];
        struct timespec ts[2] = {{CANARY_MTIME, 0}, {CANARY_MTIME, 0}};

        snprintf(path, sizeof(path), "%s/%s", sandbox, canaries[i].rel);
        if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) {
            die(path);
        }
    }
    for (size_t i = 0; i < sizeof(canaries) / sizeof(canaries[0]); i++) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", sandbox, canaries[i].rel);
        if (lstat(path, &canaries[i].st) < 0) {
            die(path);
        }
    }
}

void fz_sandbox_init(int *argc, char ***argv)
{
    char tmpl[] = "/tmp/vpfuzz.XXXXXX";
    char cwd[PATH_MAX];
    struct stat st;

    /* What libFuzzer writes: the working directory, corpus directories and
     * the artifact prefix. */
    if (getcwd(cwd, sizeof(cwd)) != NULL) {
        add_writable(cwd);
    }
    for (int i = 1; i < *argc; i++) {
        const char *a = (*argv)[i];

        if (strncmp(a, "-artifact_prefix=", 17) == 0) {
            const char *p = a + 17;
            size_t n = strlen(p);

            if (n > 0 && p[n - 1] == '/') {
                add_writable(p);
            } else {
                add_writable_parent(p);
            }
        } else if (strncmp(a, "-exact_artifact_path=", 21) == 0) {
            add_writable_parent(a + 21);
        } else if (a[0] != '-') {
            add_writable(a);
        }
    }
    if (mkdtemp(tmpl) == NULL) {
        die("mkdtemp");
    }
    snprintf(sandbox, sizeof(sandbox), "%s", tmpl);
    if (getenv("FUZZ_NO_NAMESPACE") == NULL) {
        if (unshare(CLONE_NEWNS) < 0) {
            die("unshare(CLONE_NEWNS) (the fuzz targets run as root)");
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            die("make / private");
        }
        for (int i = 0; i < nwritable; i++) {
            if (mount(writable[i], writable[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
                die(writable[i]);
            }
        }
        if (mount("vpfuzz", sandbox, "tmpfs", 0, "size=256m,mode=0755") < 0) {
            die("mount tmpfs");
        }
        set_readonly("/", true);
        for (int i = 0; i < nwritable; i++) {
            set_readonly(writable[i], false);
        }
        set_readonly(sandbox, false);
    }
    snprintf(export_dir, sizeof(export_dir), "%s/export", sandbox);
    snprintf(outside_dir, sizeof(outside_dir), "%s/outside", sandbox);
    if (mkdir(export_dir, 0755) < 0) {
        die(export_dir);
    }
    for (size_t i = 0; i < sizeof(canaries) / sizeof(canaries[0]); i++) {
        make_canary(&canaries[i]);
    }
    stamp_canaries();
    if (stat(export_dir, &st) < 0) {
        die(export_dir);
    }
    export_dev = st.st_dev;
    export_ino = st.st_ino;
    if (ops_init() < 0 || ops_export_open(&ex, export_dir) < 0) {
        fprintf(stderr, "fuzz sandbox: cannot open the export\n");
        exit(1);
    }
    fz_export_reset();
    fprintf(stderr, "fuzz sandbox: export %s, %d writable mounts kept\n", export_dir,
            nwritable);
}

void fz_drop_caps(void)
{
    if (getenv("FUZZ_KEEP_CAPS") != NULL) {
        return;
    }
    if (setgroups(0, NULL) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        die("setgroups/no_new_privs");
    }
    capng_clear(CAPNG_SELECT_ALL);
    for (unsigned int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (((CAPS_DAEMON_MASK >> cap) & 1) || cap == CAP_SYS_PTRACE) {
            capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, cap);
        }
    }
    if (capng_apply(CAPNG_SELECT_ALL) < 0) {
        die("capng_apply");
    }
}

struct export *fz_export(void)
{
    return &ex;
}

const char *fz_export_dir(void)
{
    return export_dir;
}

/* ---- export -------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (ftw->level > 0 && remove(path) < 0) {
        fprintf(stderr, "fuzz sandbox: cannot remove %s: %s\n", path, strerror(errno));
    }
    return 0;
}

static void seed_file(const char *rel, const char *content, mode_t mode)
{
    char path[PATH_MAX];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", export_dir, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, content, strlen(content)) < 0) {
        die(path);
    }
    close(fd);
}

static void seed(const char *kind, const char *rel, const char *arg)
{
    char path[PATH_MAX];
    int ret = 0;

    snprintf(path, sizeof(path), "%s/%s", export_dir, rel);
    if (strcmp(kind, "dir") == 0) {
        ret = mkdir(path, 0755);
    } else if (strcmp(kind, "link") == 0) {
        ret = symlink(arg, path);
    } else if (strcmp(kind, "fifo") == 0) {
        ret = mkfifo(path, 0644);
    }
    if (ret < 0) {
        die(path);
    }
}

void fz_export_reset(void)
{
    char abs_canary[PATH_MAX + 8];
    char path[PATH_MAX];
    char list[4096];
    ssize_t n;

    /* Directories made 0000 by a request are no obstacle to root with
     * CAP_DAC_OVERRIDE. */
    nftw(export_dir, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (chmod(export_dir, 0755) < 0 || chown(export_dir, 0, 0) < 0) {
        die(export_dir);
    }
    n = llistxattr(export_dir, list, sizeof(list));
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1) {
        lremovexattr(export_dir, list + off);
    }
    seed_file("file", "hello world\n", 0644);
    seed_file("empty", "", 0600);
    seed("dir", "dir", NULL);
    seed("dir", "dir/sub", NULL);
    seed_file("dir/f", "x", 0644);
    seed("fifo", "fifo", NULL);
    seed("link", "lroot", "/");
    seed("link", "lup", "../outside");
    seed("link", "ldd", "../../../../..");
    snprintf(abs_canary, sizeof(abs_canary), "%s/c1", outside_dir);
    seed("link", "labs", abs_canary);
    seed("link", "labsdir", outside_dir);
    seed("link", "lf", "file");
    seed("link", "ld", "dir");
    seed("link", "dir/lparent", "..");
    seed("link", "lloop", "lloop");
    snprintf(path, sizeof(path), "%s/file", export_dir);
    lsetxattr(path, "user.k", "value1", 6, 0);
}

void fz_export_maybe_reset(unsigned int every)
{
    static unsigned int calls;

    if (calls++ % every == 0) {
        fz_export_reset();
    }
}

/* ---- checks -------------------------------------------------------------- */

static void check_listing(const char *dir, const char *const *names)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t want = 0, seen = 0;

    if (d == NULL) {
        FZ_FAIL("escape: cannot list %s: %s", dir, strerror(errno));
    }
    while (names[want] != NULL) {
        want++;
    }
    while ((de = readdir(d)) != NULL) {
        bool known = false;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        for (size_t i = 0; names[i] != NULL; i++) {
            known |= strcmp(names[i], de->d_name) == 0;
        }
        if (!known) {
            closedir(d);
            FZ_FAIL("escape: %s/%s appeared outside the export", dir, de->d_name);
        }
        seen++;
    }
    closedir(d);
    if (seen != want) {
        FZ_FAIL("escape: %s has %zu entries, expected %zu", dir, seen, want);
    }
}

void fz_check_canaries(void)
{
    struct stat st;
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(canaries) / sizeof(canaries[0]); i++) {
        const struct canary *c = &canaries[i];
        const struct stat *w = &c->st;

        snprintf(path, sizeof(path), "%s/%s", sandbox, c->rel);
        if (lstat(path, &st) < 0) {
            FZ_FAIL("escape: canary %s: %s", path, strerror(errno));
        }
        if (st.st_ino != w->st_ino || st.st_mode != w->st_mode || st.st_uid != w->st_uid ||
            st.st_gid != w->st_gid || st.st_size != w->st_size || st.st_nlink != w->st_nlink ||
            st.st_mtim.tv_sec != w->st_mtim.tv_sec || st.st_ctim.tv_sec != w->st_ctim.tv_sec ||
            st.st_ctim.tv_nsec != w->st_ctim.tv_nsec) {
            FZ_FAIL("escape: canary %s changed (mode %o->%o uid %u->%u size %ld->%ld "
                    "nlink %lu->%lu ctime changed %d)",
                    path, w->st_mode, st.st_mode, w->st_uid, st.st_uid, (long)w->st_size,
                    (long)st.st_size, (unsigned long)w->st_nlink, (unsigned long)st.st_nlink,
                    st.st_ctim.tv_nsec != w->st_ctim.tv_nsec);
        }
        if (c->content != NULL) {
            char buf[64] = {0};
            int fd = open(path, O_RDONLY | O_NOFOLLOW);

            if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0 || strcmp(buf, c->content) != 0) {
                FZ_FAIL("escape: canary %s content changed", path);
            }
            close(fd);
        }
    }
    check_listing(sandbox, sandbox_names);
    check_listing(outside_dir, outside_names);
    snprintf(path, sizeof(path), "%s/d", outside_dir);
    check_listing(path, outside_d_names);
    if (stat(export_dir, &st) < 0 || st.st_ino != export_ino || st.st_dev != export_dev) {
        FZ_FAIL("escape: the export directory itself was replaced or moved");
    }
}

void fz_check_fd_inside(int fd)
{
    char link[64], target[PATH_MAX + 1];
    size_t elen = strlen(export_dir);
    struct stat st;
    ssize_t n;

    if (fstat(fd, &st) < 0) {
        FZ_FAIL("fd %d received from the daemon is not open: %s", fd, strerror(errno));
    }
    if (st.st_dev != export_dev) {
        FZ_FAIL("escape: fd %d is on device %lx, the export on %lx", fd,
                (unsigned long)st.st_dev, (unsigned long)export_dev);
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
        FZ_FAIL("fd %d refers to a special file (mode %o): CVE-2023-2861", fd, st.st_mode);
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        FZ_FAIL("readlink %s: %s", link, strerror(errno));
    }
    target[n] = '\0';
    if (strncmp(target, export_dir, elen) != 0 || (target[elen] != '\0' && target[elen] != '/')) {
        FZ_FAIL("escape: fd %d refers to %s, outside %s", fd, target, export_dir);
    }
}

/* ---- reply oracle -------------------------------------------------------- */

void fz_expect_for(uint32_t type, const uint8_t *body, size_t len, struct fz_expect *e)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    struct proto_req req;

    memcpy(copy, body, len);
    e->type = type;
    e->malformed = proto_decode_body(type, copy, len, &req) < 0;
    e->arg = 0;
    if (!e->malformed) {
        if (type == T_READLINK) {
            e->arg = (int32_t)req.a[1].d;
        } else if (type == T_LGETXATTR || type == T_LLISTXATTR) {
            e->arg = (int32_t)req.a[0].d;
        }
    }
    free(copy);
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static void check_errno(int32_t v, const struct fz_expect *e)
{
    if (v >= 0 || v < -4095) {
        FZ_FAIL("%s: error reply carries %d, not a negative errno", proto_type_name(e->type), v);
    }
    if (e->malformed && v != -EINVAL) {
        FZ_FAIL("%s: malformed body answered %d, expected -EINVAL", proto_type_name(e->type), v);
    }
}

/* An `s` field that fills the payload exactly, at most max bytes long. */
static void check_string_payload(const struct fz_expect *e, const uint8_t *p, uint32_t size,
                                 uint32_t max)
{
    uint16_t slen;

    if (size < 2) {
        FZ_FAIL("%s: %u-byte payload cannot hold a string", proto_type_name(e->type), size);
    }
    memcpy(&slen, p, 2);
    if (2u + slen != size) {
        FZ_FAIL("%s: string of %u bytes in a %u-byte payload", proto_type_name(e->type), slen,
                size);
    }
    if (slen > max) {
        FZ_FAIL("%s: %u bytes returned for a buffer of %u: QEMU would overflow",
                proto_type_name(e->type), slen, max);
    }
    if (e->type == T_READLINK && memchr(p + 2, '\0', slen) != NULL) {
        FZ_FAIL("readlink: target holds a NUL");
    }
}

size_t fz_check_reply(const struct fz_expect *e, const uint8_t *buf, size_t avail,
                      bool *fd_valid)
{
    uint32_t htype, hsize;
    const uint8_t *p = buf + PROTO_HDR_SZ;
    bool probe = (e->type == T_LGETXATTR || e->type == T_LLISTXATTR) && e->arg == 0;

    *fd_valid = false;
    if (e->type == T_OPEN || e->type == T_CREATE) {
        int32_t v;

        if (avail < 4) {
            return 0;
        }
        v = (int32_t)rd32(buf);
        if (v == PROTO_FD_VALID && !e->malformed) {
            *fd_valid = true;
        } else {
            check_errno(v, e);
        }
        return 4;
    }
    if (avail < PROTO_HDR_SZ) {
        return 0;
    }
    htype = rd32(buf);
    hsize = rd32(buf + 4);
    if (hsize > PROTO_MAX_BODY) {
        FZ_FAIL("%s: reply announces %u bytes", proto_type_name(e->type), hsize);
    }
    if (avail < PROTO_HDR_SZ + hsize) {
        return 0;
    }
    if (htype == T_ERROR) {
        if (hsize != 4) {
            FZ_FAIL("%s: error reply of %u bytes", proto_type_name(e->type), hsize);
        }
        check_errno((int32_t)rd32(p), e);
        return PROTO_HDR_SZ + 4;
    }
    if (htype != T_SUCCESS) {
        FZ_FAIL("%s: reply type %u", proto_type_name(e->type), htype);
    }
    if (e->malformed) {
        FZ_FAIL("%s: malformed request answered with success", proto_type_name(e->type));
    }
    switch (e->type) {
    case T_LSTAT:
        if (hsize != PROTO_STAT_SZ) {
            FZ_FAIL("lstat: %u-byte payload", hsize);
        }
        break;
    case T_STATFS:
        if (hsize != PROTO_STATFS_SZ) {
            FZ_FAIL("statfs: %u-byte payload", hsize);
        }
        break;
    case T_GETVERSION:
        if (hsize != 8 || rd32(p + 4) != 0) {
            FZ_FAIL("getversion: %u-byte payload or upper half not zero", hsize);
        }
        break;
    case T_READLINK:
        check_string_payload(e, p, hsize, (uint32_t)e->arg - 1);
        break;
    case T_LGETXATTR:
    case T_LLISTXATTR:
        if (probe) {
            if (hsize != 4 || (int32_t)rd32(p) < 0) {
                FZ_FAIL("%s probe: bad success reply", proto_type_name(e->type));
            }
        } else {
            check_string_payload(e, p, hsize, (uint32_t)e->arg);
        }
        break;
    default: /* status replies */
        if (hsize != 4 || rd32(p) != 0) {
            FZ_FAIL("%s: success status reply of %u bytes, value %d", proto_type_name(e->type),
                    hsize, (int32_t)rd32(p));
        }
        break;
    }
    return PROTO_HDR_SZ + hsize;
}
